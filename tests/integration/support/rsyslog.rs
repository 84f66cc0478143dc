//! rsyslog started by a test, writing the kernel lines that carry the test's prefix to a file of its
//! own, and logrotate rotating that file the two ways hosts do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{run, which};

pub struct Rsyslog {
    child: Child,
    pub dir: PathBuf,
    /// The file rsyslog writes.
    pub log: PathBuf,
}

/// How logrotate hands the file over.
#[derive(Clone, Copy, Debug)]
pub enum Rotation {
    /// Rename the file, create a new one, HUP rsyslog so it reopens.
    Create,
    /// Copy the file, then truncate it in place (rsyslog keeps writing the same file).
    CopyTruncate,
}

impl Rsyslog {
    /// Starts rsyslogd reading the kernel log (imkmsg) and writing lines that contain `marker` in the
    /// RSYSLOG_FileFormat layout (`2026-11-25T21:05:35.429037+00:00 host kernel: PREFIX: ...`).
    pub fn start(dir: &Path, marker: &str) -> Rsyslog {
        let log = dir.join("kern.log");
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let config = dir.join("rsyslog.conf");
        // imkmsg replays the whole kernel buffer at start: the marker keeps other tests' lines out.
        std::fs::write(
            &config,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imkmsg\")\n\
                 if $inputname == \"imkmsg\" and $msg contains \"{marker}\" then {{\n\
                 \x20 action(type=\"omfile\" file=\"{log}\" template=\"RSYSLOG_FileFormat\")\n\
                 }}\n",
                work = work.display(),
                log = log.display(),
            ),
        )
        .unwrap();
        let child = Command::new(which("rsyslogd").expect("rsyslogd"))
            .args(["-n", "-f"])
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        Rsyslog {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// Runs logrotate once, forced, on the log file.
    pub fn rotate(&self, rotation: Rotation) {
        let config = self.dir.join("logrotate.conf");
        let body = match rotation {
            Rotation::Create => format!(
                "{log} {{\n  rotate 5\n  create 0640 root root\n  postrotate\n    kill -HUP {pid}\n  endscript\n}}\n",
                log = self.log.display(),
                pid = self.child.id()
            ),
            Rotation::CopyTruncate => {
                format!(
                    "{log} {{\n  rotate 5\n  copytruncate\n  compress\n}}\n",
                    log = self.log.display()
                )
            }
        };
        std::fs::write(&config, body).unwrap();
        let state = self.dir.join("logrotate.state");
        run(
            "logrotate",
            &[
                "-f",
                "-s",
                &state.display().to_string(),
                &config.display().to_string(),
            ],
        );
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
