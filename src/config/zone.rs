//! The host's time zone, for timestamps written without one (rsyslog's traditional format): `TZ` when
//! set, else `/etc/localtime` (in a container, the host's, mounted read-only by the DaemonSet), else
//! UTC. Loaded once here, with its rules, and handed to the parser as a value.
//!
//! `TZ` is read as the C library reads it: an IANA name (`Europe/Berlin`, from /usr/share/zoneinfo or,
//! in an image without tzdata, the database built into the agent), a POSIX rule
//! (`EST5EDT,M3.2.0,M11.1.0`), an absolute path to a TZif file, any of them after a `:`; empty is UTC.

use std::path::Path;

use jiff::tz::TimeZone;

use super::{ConfigError, invalid};
use crate::parse::LocalZone;

/// Where the host's zone is on a Linux system.
pub const LOCALTIME: &str = "/etc/localtime";

/// `tz` is `TZ`'s value, `localtime` the file read when it is unset.
pub fn local_zone(tz: Option<&str>, localtime: &Path) -> Result<LocalZone, ConfigError> {
    let Some(value) = tz else {
        return match std::fs::read(localtime) {
            // A host (or a container) without a zone file runs on UTC, as the C library does.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(LocalZone::utc()),
            Err(error) => Err(invalid(
                "TZ",
                "",
                format!(
                    "not set, and {} cannot be read: {error}; set TZ (TZ=UTC, or the zone your logs are written in)",
                    localtime.display()
                ),
            )),
            Ok(data) => TimeZone::tzif(&localtime.display().to_string(), &data)
                .map(LocalZone::new)
                .map_err(|error| {
                    invalid(
                        "TZ",
                        "",
                        format!(
                            "not set, and {} is not a time zone file ({error}); set TZ (TZ=UTC, or the zone your logs are written in)",
                            localtime.display()
                        ),
                    )
                }),
        };
    };
    let name = value.strip_prefix(':').unwrap_or(value);
    if name.is_empty() {
        return Ok(LocalZone::utc());
    }
    if name.starts_with('/') {
        let data = std::fs::read(name)
            .map_err(|error| invalid("TZ", value, format!("cannot be read: {error}")))?;
        return TimeZone::tzif(name, &data)
            .map(LocalZone::new)
            .map_err(|error| invalid("TZ", value, format!("is not a time zone file: {error}")));
    }
    TimeZone::get(name)
        .or_else(|_| TimeZone::posix(name))
        .map(LocalZone::new)
        .map_err(|_| {
            invalid(
                "TZ",
                value,
                "is neither a time zone name (such as Europe/Berlin) nor a POSIX rule (such as CET-1CEST,M3.5.0,M10.5.0/3)",
            )
        })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDateTime, Utc};

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The instant of a Berlin wall-clock time in `zone`.
    fn instant(zone: &LocalZone, local: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        zone.instant(local, utc("2027-01-01T00:00:00Z")).unwrap()
    }

    /// Berlin's offsets in winter (+1) and summer (+2).
    fn assert_berlin(zone: &LocalZone) {
        assert_eq!(
            instant(zone, "2026-01-15 12:00:00"),
            utc("2026-01-15T11:00:00Z")
        );
        assert_eq!(
            instant(zone, "2026-07-15 12:00:00"),
            utc("2026-07-15T10:00:00Z")
        );
    }

    #[test]
    fn tz_takes_a_zone_name_a_posix_rule_or_a_tzif_file() {
        let nowhere = Path::new("/nonexistent/localtime");
        assert_berlin(&local_zone(Some("Europe/Berlin"), nowhere).unwrap());
        assert_berlin(&local_zone(Some(":Europe/Berlin"), nowhere).unwrap());
        assert_berlin(&local_zone(Some("CET-1CEST,M3.5.0,M10.5.0/3"), nowhere).unwrap());
        if Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            let path = Some("/usr/share/zoneinfo/Europe/Berlin");
            assert_berlin(&local_zone(path, nowhere).unwrap());
        }
        let utc_zone = local_zone(Some(""), nowhere).unwrap();
        assert_eq!(
            instant(&utc_zone, "2026-07-15 12:00:00"),
            utc("2026-07-15T12:00:00Z")
        );
    }

    #[test]
    fn without_tz_the_zone_file_is_read_and_without_one_it_is_utc() {
        let dir = tempfile::tempdir().unwrap();
        let localtime = dir.path().join("localtime");
        // A mounted /etc/localtime is the zone's TZif data, not a link to a name.
        let berlin = std::fs::read("/usr/share/zoneinfo/Europe/Berlin");
        if let Ok(data) = berlin {
            std::fs::write(&localtime, data).unwrap();
            assert_berlin(&local_zone(None, &localtime).unwrap());
        }
        let missing = dir.path().join("missing");
        let zone = local_zone(None, &missing).unwrap();
        assert_eq!(
            instant(&zone, "2026-07-15 12:00:00"),
            utc("2026-07-15T12:00:00Z")
        );
    }

    #[test]
    fn a_zone_that_cannot_be_had_names_tz() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("missing");
        let error = local_zone(Some("Mars/Olympus_Mons"), &nowhere).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid TZ=\"Mars/Olympus_Mons\": is neither a time zone name (such as Europe/Berlin) \
             nor a POSIX rule (such as CET-1CEST,M3.5.0,M10.5.0/3)"
        );
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not a zone").unwrap();
        let error = local_zone(None, &garbage).unwrap_err();
        assert_eq!(error.variable, "TZ");
        assert!(
            error.problem.starts_with(&format!(
                "not set, and {} is not a time zone file (",
                garbage.display()
            )),
            "{error}"
        );
        // The container runtime makes a directory where a mounted file was missing on the host.
        let error = local_zone(None, dir.path()).unwrap_err();
        assert_eq!(error.variable, "TZ");
        let error = local_zone(Some(garbage.to_str().unwrap()), &nowhere).unwrap_err();
        assert!(
            error.problem.starts_with("is not a time zone file: "),
            "{error}"
        );
    }
}
