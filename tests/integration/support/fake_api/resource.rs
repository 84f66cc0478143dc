//! The kinds of object the fake lists and watches, with the names the API gives each (group, version,
//! kind, plural), so that lists, watch events, bookmarks and refusals name the right one.

/// A listed and watched kind. Events are stored too, but never listed paged nor watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// core/v1 Pod.
    Pod,
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
}

impl Resource {
    /// `apiVersion` of its objects: `v1`, `networking.k8s.io/v1`.
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Pod => "v1",
            Resource::NetworkPolicy => "networking.k8s.io/v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Resource::Pod => "Pod",
            Resource::NetworkPolicy => "NetworkPolicy",
        }
    }

    /// The kind of its list: `PodList`.
    pub fn list_kind(self) -> String {
        format!("{}List", self.kind())
    }

    /// The resource in paths and RBAC rules: `pods`, `networkpolicies`.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Pod => "pods",
            Resource::NetworkPolicy => "networkpolicies",
        }
    }

    /// The resource as error messages name it: `pods`, `networkpolicies.networking.k8s.io`.
    pub fn qualified(self) -> String {
        match self {
            Resource::Pod => self.plural().to_string(),
            Resource::NetworkPolicy => format!("{}.networking.k8s.io", self.plural()),
        }
    }
}
