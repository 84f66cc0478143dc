//! `fieldSelector` as the API server reads it for the fields the fake's kinds support: pods by
//! `metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.podIP` and `status.phase`;
//! NetworkPolicies by `metadata.name` and `metadata.namespace`. Terms are `field=value`, `field==value`
//! or `field!=value`, joined by commas (all must hold). Another field is refused with 400, as the API
//! server refuses it; a field the object lacks matches the empty value (`spec.nodeName=` selects the
//! pods not yet scheduled).

use serde_json::Value;

use super::resource::Resource;
use super::store::{Refusal, status};

/// The terms of one selector; empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    /// JSON path of the field: `["spec", "nodeName"]`.
    path: Vec<String>,
    value: String,
    equal: bool,
}

impl FieldSelector {
    /// The selector of `text` for `resource` (`None` or empty: everything).
    pub fn parse(resource: Resource, text: Option<&str>) -> Result<FieldSelector, Refusal> {
        let mut terms = Vec::new();
        for term in text
            .unwrap_or("")
            .split(',')
            .filter(|term| !term.is_empty())
        {
            let (field, value, equal) = if let Some((field, value)) = term.split_once("!=") {
                (field, value, false)
            } else if let Some((field, value)) = term.split_once("==") {
                (field, value, true)
            } else if let Some((field, value)) = term.split_once('=') {
                (field, value, true)
            } else {
                return Err(status(
                    400,
                    &format!("invalid selector: '{term}'; can't understand '{term}'"),
                ));
            };
            let supported: &[&str] = match resource {
                Resource::Pod => &[
                    "metadata.name",
                    "metadata.namespace",
                    "spec.nodeName",
                    "status.podIP",
                    "status.phase",
                ],
                Resource::NetworkPolicy => &["metadata.name", "metadata.namespace"],
            };
            if !supported.contains(&field) {
                return Err(status(400, &format!("field label not supported: {field}")));
            }
            terms.push(Term {
                path: field.split('.').map(String::from).collect(),
                value: value.to_string(),
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The IP of a `status.podIP=IP` term: the store finds those pods by index.
    pub fn pod_ip(&self) -> Option<&str> {
        (self.terms.iter())
            .find(|term| term.equal && term.path == ["status", "podIP"])
            .map(|term| term.value.as_str())
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|term| {
            let field = (term.path.iter())
                .try_fold(object, |value, key| value.get(key))
                .and_then(Value::as_str)
                .unwrap_or("");
            (field == term.value) == term.equal
        })
    }
}
