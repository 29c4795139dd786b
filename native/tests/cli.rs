//! The CLI as a user runs it, on the machine's adapter (lavapipe without a GPU).

use std::process::Command;

#[test]
fn demo_prints_adapter_and_doubled_answers() {
    let output = Command::new(env!("CARGO_BIN_EXE_ringkernel-native"))
        .args(["demo", "--count", "3", "--metrics"])
        .output()
        .expect("run ringkernel-native");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("adapter: "), "{stdout}");
    for line in [
        "doubler(1) = 2",
        "doubler(11) = 22",
        "doubler(21) = 42",
        "processed on GPU 3",
        "doubler: terminated",
        "latency ms (send to answer on host): min ",
        "ringkernel_messages_processed_total{kernel=\"doubler\"} 3",
    ] {
        assert!(stdout.contains(line), "missing '{line}' in:\n{stdout}");
    }
}

#[test]
fn unknown_backend_is_refused_by_clap() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_ringkernel-native")).args(["--backend", "cuda", "info"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 'cuda'"));
}
