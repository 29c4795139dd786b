//! Optional device features, natively: every device opens with `shader-f16` where its adapter
//! has it (lavapipe's Vulkan adapter does, its GL adapter does not), so a handler that says
//! `enable f16;` runs there. Placement passes over devices without it, and a launch or a
//! migration onto one is refused at the handler's `enable` line, naming the feature, with
//! nothing launched or moved.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use ringkernel_web::kernel::{doubler_request, doubler_response};
use ringkernel_web::{
    BackendChoice, DeviceFeature, DeviceId, DeviceRequirements, DeviceSpec, Error, KernelDefinition, LaunchOptions,
    Runtime, RuntimeOptions,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Doubles each value in 16-bit floats (exact for the values below 1,024 sent here).
const HALF_DOUBLER: &str = "// Arithmetic in half floats.
enable f16;
fn handle(msg: Request) -> Response {
    let halves = vec2h(f16(msg.value), 2.0h);
    return Response(i32(halves.x * halves.y));
}";

fn half_doubler(id: &str) -> KernelDefinition {
    KernelDefinition::new(id, doubler_request(), doubler_response(), HALF_DOUBLER)
}

fn runtime_with(options: RuntimeOptions) -> Runtime {
    pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| {
        panic!("these tests need lavapipe's Vulkan and GL adapters (mesa-vulkan-drivers, libegl-mesa0): {e}")
    })
}

/// Sends 0..count and checks that each answer is its message doubled, in order.
async fn doubles(rt: &Runtime, id: &str, count: i32) {
    let values: Vec<i32> = (0..count).collect();
    assert_eq!(rt.send_batch(id, &values, WAIT).await.unwrap(), values.len());
    let mut answers = Vec::new();
    while answers.len() < values.len() {
        answers.extend(rt.receive_batch::<i32>(id, values.len() - answers.len(), WAIT).await.unwrap());
    }
    assert_eq!(answers, values.iter().map(|v| v * 2).collect::<Vec<_>>());
}

/// The refusal of the half doubler by a device without `shader-f16`: at its `enable` line's
/// extension, naming the feature and the adapter.
fn assert_refused_for_f16(error: Error, adapter: &str) {
    match error {
        Error::KernelCompile { message, line, column, .. } => {
            assert_eq!((line, column), (Some(2), Some(8)), "{message}");
            assert!(message.contains("\"shader-f16\"") && message.contains(adapter), "{message}");
        }
        other => panic!("expected KernelCompile, got {other:?}"),
    }
}

#[test]
fn a_device_opens_with_shader_f16_where_its_adapter_has_it_and_f16_handlers_run_there() {
    pollster::block_on(async {
        let rt = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Vulkan));
        assert_eq!(rt.adapter().features, [DeviceFeature::ShaderF16], "lavapipe's Vulkan adapter has shader-f16");
        rt.launch_definition(half_doubler("half"), LaunchOptions::default()).await.unwrap();
        rt.activate("half").await.unwrap();
        doubles(&rt, "half", 1000).await;
        let answer: i32 = rt.call_pod("half", &21i32, WAIT).await.unwrap();
        assert_eq!(answer, 42);
        rt.shutdown().await.unwrap();
    });
}

#[test]
fn a_device_without_shader_f16_refuses_an_f16_handler_at_its_enable_line() {
    pollster::block_on(async {
        let rt = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Gl));
        assert!(rt.adapter().features.is_empty(), "lavapipe's GL adapter has no shader-f16");
        let adapter = rt.adapter().name;
        let refused = rt.launch_definition(half_doubler("half"), LaunchOptions::default()).await.unwrap_err();
        assert_refused_for_f16(refused, &adapter);
        assert!(rt.kernel_ids().is_empty(), "nothing launched: {:?}", rt.kernel_ids());
        // The same id launches once the handler does without it.
        let plain = "fn handle(msg: Request) -> Response { return Response(msg.value * 2); }";
        let definition = KernelDefinition::new("half", doubler_request(), doubler_response(), plain);
        rt.launch_definition(definition, LaunchOptions::default()).await.unwrap();
        rt.activate("half").await.unwrap();
        doubles(&rt, "half", 100).await;
        rt.shutdown().await.unwrap();
    });
}

#[test]
fn placement_passes_over_devices_without_the_feature_and_a_move_onto_one_is_refused() {
    pollster::block_on(async {
        let rt = runtime_with(
            RuntimeOptions::default()
                .with_devices([DeviceSpec::new(BackendChoice::Gl), DeviceSpec::new(BackendChoice::Vulkan)]),
        );
        let topology = rt.gpu_topology();
        let features: Vec<&[DeviceFeature]> = topology.devices().map(|d| d.adapter.features.as_slice()).collect();
        assert_eq!(features, [&[][..], &[DeviceFeature::ShaderF16][..]]);
        // The balancer would spread them over both devices; every f16 kernel goes where it can run.
        for id in ["a", "b", "c"] {
            rt.launch_definition(half_doubler(id), LaunchOptions::default()).await.unwrap();
            assert_eq!(rt.device_of(id).unwrap(), DeviceId(1), "{id}");
            rt.activate(id).await.unwrap();
        }
        // Named onto the GL device: refused, nothing launched.
        let gl = topology.devices[0].adapter.name.clone();
        let named = LaunchOptions::default().on_device(DeviceId(0));
        assert_refused_for_f16(rt.launch_definition(half_doubler("d"), named).await.unwrap_err(), &gl);
        assert!(!rt.kernel_ids().contains(&"d".to_string()));
        // A move onto it: refused, the kernel stays where it was and answers there.
        let moved = rt.migrate("a", DeviceId(0)).await.unwrap_err();
        // A move is no launch: the refusal says where the kernel can run, not where to launch it.
        assert!(!moved.to_string().contains("launch"), "{moved}");
        assert_refused_for_f16(moved, &gl);
        assert_eq!(rt.device_of("a").unwrap(), DeviceId(1));
        doubles(&rt, "a", 200).await;
        rt.shutdown().await.unwrap();
    });
}

/// Requirements that only a device without the feature meets: the launch goes there, as a
/// launch naming it would, and is refused at the `enable` line naming the feature, not with
/// "no device meets the requirements" (the GL device meets them).
#[test]
fn requirements_met_only_by_a_device_without_the_feature_refuse_at_the_enable_line() {
    pollster::block_on(async {
        let rt = runtime_with(
            RuntimeOptions::default()
                .with_devices([DeviceSpec::new(BackendChoice::Gl), DeviceSpec::new(BackendChoice::Vulkan)]),
        );
        let gl = rt.gpu_topology().devices[0].adapter.name.clone();
        let on_gl =
            LaunchOptions::default().with_requirements(DeviceRequirements::default().with_backend(BackendChoice::Gl));
        assert_refused_for_f16(rt.launch_definition(half_doubler("half"), on_gl.clone()).await.unwrap_err(), &gl);
        assert!(rt.kernel_ids().is_empty(), "nothing launched: {:?}", rt.kernel_ids());
        // Requirements the Vulkan device meets too: it goes there and runs.
        let any = LaunchOptions::default().with_requirements(DeviceRequirements::default().with_min_buffer_bytes(1024));
        rt.launch_definition(half_doubler("half"), any).await.unwrap();
        assert_eq!(rt.device_of("half").unwrap(), DeviceId(1));
        rt.activate("half").await.unwrap();
        doubles(&rt, "half", 100).await;
        rt.shutdown().await.unwrap();
    });
}

/// The half doubler with its comment line ended by each of WGSL's line breaks, and blankspace
/// beyond ASCII inside its directive: the directive is read (and moved to the module's top)
/// wherever WGSL reads one, so the handler runs where the feature is and is refused at its
/// `enable` line where not.
#[test]
fn enable_directives_after_any_wgsl_line_break_are_read() {
    pollster::block_on(async {
        let vulkan = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Vulkan));
        let gl = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Gl));
        let adapter = gl.adapter().name;
        for (n, newline) in ["\r\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"].into_iter().enumerate()
        {
            let source = HALF_DOUBLER.replacen("floats.\n", &format!("floats.{newline}"), 1).replacen(
                "enable f16;",
                "enable\u{200E} f16\u{200F};",
                1,
            );
            let id = format!("half-{n}");
            let definition = KernelDefinition::new(&id, doubler_request(), doubler_response(), &source);
            let refused = gl.launch_definition(definition.clone(), LaunchOptions::default()).await.unwrap_err();
            match refused {
                Error::KernelCompile { message, line, column, .. } => {
                    // The extension's name, in characters: the left-to-right mark before it is
                    // one (of 3 bytes).
                    assert_eq!((line, column), (Some(2), Some(9)), "{newline:?}: {message}");
                    assert!(message.contains("\"shader-f16\"") && message.contains(&adapter), "{message}");
                }
                other => panic!("{newline:?}: expected KernelCompile, got {other:?}"),
            }
            vulkan
                .launch_definition(definition, LaunchOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{newline:?}: {e}"));
            vulkan.activate(&id).await.unwrap();
            let answer: i32 = vulkan.call_pod(&id, &21i32, WAIT).await.unwrap();
            assert_eq!(answer, 42, "{newline:?}");
        }
        vulkan.shutdown().await.unwrap();
        gl.shutdown().await.unwrap();
    });
}
