//! The CLI as a user runs it, on the machine's adapter (lavapipe without a GPU).

use std::process::{Command, Output};

use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringkernel-native")).args(args).output().expect("run ringkernel-native")
}

/// Runs the CLI, expects success, returns stdout.
fn cli_ok(args: &[&str]) -> String {
    let output = cli(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn assert_contains_all(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
}

#[test]
fn demo_prints_adapter_and_doubled_answers() {
    let stdout = cli_ok(&["demo", "--count", "3", "--metrics"]);
    assert!(stdout.starts_with("adapter: "), "{stdout}");
    assert_contains_all(
        &stdout,
        &[
            "doubler(1) = 2",
            "doubler(11) = 22",
            "doubler(21) = 42",
            "processed on GPU 3",
            "doubler: terminated",
            "latency ms (send to answer on host): min ",
            "ringkernel_messages_processed_total{kernel=\"doubler\"} 3",
        ],
    );
}

#[test]
fn demo_runs_on_the_cpu_backend() {
    let stdout = cli_ok(&["--backend", "cpu", "demo", "--count", "3"]);
    assert_contains_all(
        &stdout,
        &["adapter: ", "doubler(21) = 42", "processed by host handlers 3", "doubler: terminated"],
    );
}

/// More messages than the queues hold: the demo sends at most a window ahead of its receives.
#[test]
fn demo_sends_more_messages_than_a_queue_holds() {
    let stdout = cli_ok(&["--backend", "cpu", "demo", "--count", "10000"]);
    assert_contains_all(
        &stdout,
        &["doubler(99991) = 199982", "processed by host handlers 10000", "doubler: terminated"],
    );
    assert_eq!(stdout.lines().filter(|line| line.starts_with("doubler(")).count(), 10_000);
    let negative = cli(&["demo", "--count=-3"]);
    assert!(!negative.status.success(), "a negative count is clap's error");
}

#[test]
fn unknown_backend_is_refused_by_clap() {
    let output = cli(&["--backend", "cuda", "info"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 'cuda'"));
}

#[test]
fn info_json_names_the_adapters_their_limits_and_the_runtimes_pick() {
    let info: Value = serde_json::from_str(&cli_ok(&["info", "--json"])).expect("info --json is JSON");
    let adapters = info["adapters"].as_array().expect("an adapter list");
    assert!(!adapters.is_empty(), "no adapter listed: {info:#}");
    for adapter in adapters {
        assert!(!adapter["name"].as_str().unwrap().is_empty(), "{adapter:#}");
        assert!(adapter["backend"].is_string() && adapter["deviceType"].is_string() && adapter["driver"].is_string());
        for limit in [
            "maxStorageBufferBindingSize",
            "maxBufferSize",
            "maxComputeInvocationsPerWorkgroup",
            "maxComputeWorkgroupsPerDimension",
            "maxStorageBuffersPerShaderStage",
            "maxComputeWorkgroupStorageSize",
        ] {
            assert!(adapter["limits"][limit].as_u64().is_some_and(|v| v > 0), "{limit} in {adapter:#}");
        }
    }
    let picked = &info["runtime"]["adapter"];
    assert!(
        adapters.iter().any(|a| a["name"] == picked["name"] && a["backend"] == picked["backend"]),
        "the runtime's adapter is one of those listed: {info:#}"
    );
    // The optional features its device was opened with, by their WebGPU names (lavapipe's
    // Vulkan adapter has shader-f16).
    let features = picked["features"].as_array().expect("the runtime's features");
    assert!(features.iter().all(|f| f == "shader-f16"), "{info:#}");
}

#[test]
fn info_and_bench_without_an_adapter_fail_and_say_what_runs() {
    // wgpu compiles Metal in on Apple systems only, DX12 on Windows only.
    let absent = if cfg!(target_os = "macos") { "dx12" } else { "metal" };
    let info = cli(&["--backend", absent, "info"]);
    assert!(!info.status.success(), "info exits 1 when the runtime has no adapter");
    assert!(String::from_utf8_lossy(&info.stdout).contains("runtime: unavailable"));
    let bench = cli(&["--backend", absent, "bench", "--quick"]);
    assert!(!bench.status.success());
    let stderr = String::from_utf8_lossy(&bench.stderr);
    assert!(
        stderr.contains(&format!("bench needs a GPU adapter for --backend {absent}"))
            && stderr.contains("`--backend cpu demo`"),
        "{stderr}"
    );
}

#[test]
fn backend_cpu_is_accepted_and_info_says_host_handlers() {
    let stdout = cli_ok(&["--backend", "cpu", "info"]);
    assert!(stdout.contains("host handlers"), "{stdout}");
    let info: Value = serde_json::from_str(&cli_ok(&["--backend", "cpu", "info", "--json"])).unwrap();
    assert_eq!(info["backend"], "cpu");
    assert_eq!(info["adapters"].as_array().map(Vec::len), Some(0), "no GPU adapter with --backend cpu");
}

/// A latency summary in microseconds with positive, ordered percentiles.
fn assert_latency(value: &Value, what: &str) {
    assert_eq!(value["unit"], "us", "{what}: {value:#}");
    let p50 = value["p50"].as_f64().unwrap_or(f64::NAN);
    let p99 = value["p99"].as_f64().unwrap_or(f64::NAN);
    assert!(p50 > 0.0 && p99 >= p50, "{what}: {value:#}");
    assert!(value["samples"].as_u64().is_some_and(|n| n > 0), "{what}: {value:#}");
}

fn assert_throughput(value: &Value, what: &str) {
    assert_eq!(value["unit"], "msgs/s", "{what}: {value:#}");
    assert!(value["msgsPerSec"].as_f64().is_some_and(|v| v > 0.0), "{what}: {value:#}");
}

fn positive(value: &Value) -> bool {
    value.as_f64().is_some_and(|v| v.is_finite() && v > 0.0)
}

#[test]
fn quick_bench_reports_every_section_as_json() {
    let stdout = cli_ok(&["bench", "--quick", "--json"]);
    let report: Value = serde_json::from_str(&stdout).expect("bench --json prints one JSON document");

    for field in ["name", "backend", "deviceType"] {
        assert!(report["adapter"][field].as_str().is_some_and(|s| !s.is_empty()), "adapter.{field}");
    }
    assert_eq!(report["config"]["quick"], true);
    assert_latency(&report["floors"]["submitAndMap"], "floors.submitAndMap");
    assert_latency(&report["floors"]["rawSingle"], "floors.rawSingle");
    assert_latency(&report["roundTrip"]["sendReceive"], "roundTrip.sendReceive");
    assert_latency(&report["roundTrip"]["call"], "roundTrip.call");

    let batches = report["throughput"].as_array().expect("throughput rows");
    let sizes: Vec<u64> = batches.iter().map(|b| b["messages"].as_u64().unwrap()).collect();
    assert_eq!(
        sizes,
        report["config"]["batchSizes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>()
    );
    assert!(sizes.contains(&1) && sizes.len() >= 3, "{sizes:?}");
    for batch in batches {
        assert_throughput(&batch["runtime"], "throughput.runtime");
        assert_throughput(&batch["raw"], "throughput.raw");
        assert_throughput(&batch["rawSameGrid"], "throughput.rawSameGrid");
        let workgroups = batch["rawSameGrid"]["workgroups"].as_u64().expect("the runtime's grid");
        // A software adapter (lavapipe here) gets at most 64 workgroups (src/backend/gpu/kernel.rs).
        assert!(workgroups >= 1 && (report["adapter"]["deviceType"] != "Cpu" || workgroups <= 64), "{batch:#}");
    }

    assert_throughput(&report["perMessage"], "perMessage");
    assert_latency(&report["perMessage"]["latency"], "perMessage.latency");

    let kernels: Vec<u64> =
        report["kernels"].as_array().expect("kernel rows").iter().map(|k| k["kernels"].as_u64().unwrap()).collect();
    assert!(kernels.contains(&1) && kernels.contains(&16), "{kernels:?}");
    for row in report["kernels"].as_array().unwrap() {
        assert_latency(&row["tick"], "kernels.tick");
        assert_latency(&row["rawTick"], "kernels.rawTick");
        assert!(row["ticksPerRound"].as_f64().is_some_and(|t| t >= 1.0), "kernels.ticksPerRound: {row:#}");
        // Where an average tick went, from the runtime's own tick telemetry.
        for step in ["plan", "submit", "wait", "deliver"] {
            let us = row["steps"][step].as_f64();
            assert!(us.is_some_and(|us| us >= 0.0 && us.is_finite()), "kernels.steps.{step}: {row:#}");
        }
        assert!(row["steps"]["wait"].as_f64().is_some_and(|us| us > 0.0), "kernels.steps.wait: {row:#}");
    }
    let pipeline = &report["pipeline"];
    assert_eq!(pipeline["stages"].as_u64(), Some(4));
    for part in ["connected", "unfused", "hostRelayed", "pausedMiddleStage", "singleStage"] {
        assert_latency(&pipeline[part], "pipeline");
    }
    let state = &report["stateCheckpoint"];
    assert_eq!(state["stateBytes"].as_u64(), Some(4 << 20), "{state:#}");
    for part in ["everyTick", "never"] {
        assert_latency(&state[part], "stateCheckpoint");
    }
    // Measures against their bases in alternating blocks: a ratio per block, and their median.
    for (paired, what) in [
        (&report["roundTrip"]["paired"], "roundTrip.paired"),
        (&report["kernelRounds"], "kernelRounds"),
        (&pipeline["paired"], "pipeline.paired"),
    ] {
        let ratios = paired["ratios"].as_array().unwrap_or_else(|| panic!("{what}.ratios: {paired:#}"));
        assert_eq!(ratios.len(), 10, "{what}: {paired:#}");
        assert!(ratios.iter().all(positive) && positive(&paired["median"]), "{what}: {paired:#}");
        assert!(paired["blockSamples"].as_u64().is_some_and(|n| n >= 20), "{what}: {paired:#}");
        // And the differences of the same p50s (µs; a runtime faster than its base is negative).
        let differences =
            paired["differencesUs"].as_array().unwrap_or_else(|| panic!("{what}.differencesUs: {paired:#}"));
        assert_eq!(differences.len(), 10, "{what}: {paired:#}");
        assert!(differences
            .iter()
            .chain([&paired["medianDifferenceUs"]])
            .all(|d| d.as_f64().is_some_and(f64::is_finite)));
    }

    let cpu = &report["cpuBackend"];
    match cpu["available"].as_bool() {
        Some(true) => {
            assert_latency(&cpu["sendReceive"], "cpuBackend.sendReceive");
            assert_eq!(cpu["throughput"].as_array().map(Vec::len), Some(sizes.len()));
            for t in cpu["throughput"].as_array().unwrap() {
                assert_throughput(t, "cpuBackend.throughput");
            }
        }
        Some(false) => assert!(cpu["reason"].as_str().is_some_and(|r| !r.is_empty()), "{cpu:#}"),
        None => panic!("cpuBackend.available is missing: {cpu:#}"),
    }

    let cost = &report["hostCost"];
    assert_eq!(cost["messages"].as_u64(), Some(1_000), "{cost:#}");
    assert!(positive(&cost["sendNs"]) && positive(&cost["receiveNs"]), "{cost:#}");

    let ratios = &report["ratios"];
    let per_size = ratios["batchedOverRaw"].as_array().expect("batched / raw per size");
    assert_eq!(per_size.len(), sizes.len());
    assert!(per_size.iter().all(|r| positive(&r["value"])), "{ratios:#}");
    let same_grid = ratios["batchedOverRawSameGrid"].as_array().expect("batched / raw on the runtime's grid per size");
    assert_eq!(same_grid.len(), sizes.len());
    assert!(same_grid.iter().all(|r| positive(&r["value"])), "{ratios:#}");
    for ratio in [
        "roundTripOverRawSingle",
        "roundTripOverRawSinglePaired",
        "roundTripOverSubmitAndMap",
        "tick16OverTick1",
        "tick16OverTick1Paired",
        "rawTick16OverRawTick1",
        "pipelineOverSingleStage",
        "pipelineOverSingleStagePaired",
        "hostRelayedOverSingleStage",
        "unfusedOverSingleStage",
        "pausedMiddleOverSingleStage",
        "checkpointEveryTickOverNever",
    ] {
        assert!(positive(&ratios[ratio]), "ratios.{ratio}: {ratios:#}");
    }
    assert!(positive(&ratios["batchedOverPerMessage"]["value"]), "{ratios:#}");
    assert_eq!(ratios["roundTripExtraUs"], report["roundTrip"]["paired"]["medianDifferenceUs"], "{ratios:#}");
}

#[test]
fn bench_table_names_each_section() {
    let stdout = cli_ok(&["bench", "--quick", "--iterations", "3", "--naive-count", "3"]);
    assert_contains_all(
        &stdout,
        &[
            "adapter: ",
            "floor: submit + map",
            "runtime: send → receive",
            "throughput",
            "per message",
            "kernels with traffic",
            "average tick (µs)",
            "MiB state, send → receive",
            "host cost per message",
            "cpu backend",
            "ratios",
        ],
    );
}
