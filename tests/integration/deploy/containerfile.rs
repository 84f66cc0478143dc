//! The Containerfile, read, since no container engine runs here to build it (`make image` says so):
//! built from the locked dependencies, a runtime stage of the same Debian release with only
//! libsystemd0 added, non-root by default, the binary as the entry point; and a build context that
//! leaves target/ behind.

use super::repo;

fn instructions() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    // Join continued lines, drop comments.
    text.replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_containerfile_builds_locked_and_runs_the_binary_as_non_root() {
    let instructions = instructions();
    let stages: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert_eq!(
        stages.len(),
        2,
        "a build stage and a runtime stage: {stages:?}"
    );
    assert!(stages[0].contains("rust:") && stages[0].ends_with(" AS build"));
    // The same Debian release in both, so the binary meets the glibc it was linked against.
    assert!(
        stages[0].contains("-${DEBIAN_RELEASE}") && stages[1].contains(":${DEBIAN_RELEASE}-slim")
    );

    let runtime = instructions
        .iter()
        .skip_while(|i| !std::ptr::eq(*i, stages[1]))
        .collect::<Vec<_>>();
    let build = &instructions[..instructions.len() - runtime.len()];
    assert!(
        build
            .iter()
            .any(|i| i.starts_with("RUN cargo build --release --locked")),
        "{build:?}"
    );
    let installs: Vec<&&String> = runtime
        .iter()
        .filter(|i| i.contains("apt-get install"))
        .collect();
    assert_eq!(installs.len(), 1);
    assert!(
        installs[0].contains("--no-install-recommends libsystemd0 &&"),
        "{installs:?}"
    );
    assert!(
        runtime.contains(&&"USER 65532:65532".to_string()),
        "{runtime:?}"
    );
    assert_eq!(
        runtime
            .iter()
            .rev()
            .find(|i| i.starts_with("ENTRYPOINT "))
            .map(|i| i.as_str()),
        Some("ENTRYPOINT [\"/usr/local/bin/kube-iptables-tailer\"]")
    );
}

#[test]
fn the_build_context_leaves_target_and_git_behind_for_docker_and_podman_alike() {
    let patterns = |name: &str| -> Vec<String> {
        std::fs::read_to_string(repo().join(name))
            .unwrap()
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let docker = patterns(".dockerignore");
    assert_eq!(docker, patterns(".containerignore"));
    for needed in ["target", ".git"] {
        assert!(docker.iter().any(|p| p == needed), "{needed} ignored");
    }
    // What the Containerfile copies stays in the context.
    for copied in ["src", "benches", "tests", "Cargo.toml", "Cargo.lock"] {
        assert!(!docker.iter().any(|p| p == copied), "{copied} is needed");
    }
}
