//! A kernel with a large `state` array: one message's round trip when the state comes back as
//! the checkpoint with every tick (the default) against a kernel whose checkpoint interval keeps
//! it on the device (`LaunchOptions::checkpoint_interval`, here never). The handler counts each
//! message in the state and doubles it, so the bench's answer check holds.

use std::time::Duration;

use anyhow::Context;
use ringkernel_web::kernel::{self, doubler_request, doubler_response};
use ringkernel_web::{KernelDefinition, LaunchOptions, Runtime, StateElement};

use super::runtime_doubler::TIMEOUT;

/// Words of each kernel's state: 4 MiB, a large state but far under any device's binding limit.
pub const STATE_WORDS: u32 = 1 << 20;

/// The kernel that checkpoints with every tick.
pub const EVERY_TICK: &str = "state-every-tick";
/// The kernel that never checkpoints.
pub const NEVER: &str = "state-never";

/// Launches and activates both kernels.
pub async fn launch(runtime: &Runtime) -> anyhow::Result<()> {
    let wgsl = format!(
        "fn handle(msg: Request) -> Response {{\n    atomicAdd(&state[u32(msg.value) & {}u], 1u);\n    return Response(msg.value * 2);\n}}",
        STATE_WORDS - 1
    );
    for (id, interval) in [(EVERY_TICK, None), (NEVER, Some(Duration::MAX))] {
        let definition = KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
            .with_state(StateElement::AtomicU32, STATE_WORDS);
        kernel::register(definition.clone()).with_context(|| format!("registering {id}"))?;
        let mut options = LaunchOptions::default().with_auto_activate();
        if let Some(interval) = interval {
            options = options.with_checkpoint_interval(interval);
        }
        runtime.launch_definition(definition, options).await.with_context(|| format!("launching {id}"))?;
    }
    Ok(())
}

/// Terminates and removes both kernels.
pub async fn remove(runtime: &Runtime) -> anyhow::Result<()> {
    for id in [EVERY_TICK, NEVER] {
        runtime.terminate(id, TIMEOUT).await?;
        runtime.remove(id)?;
    }
    Ok(())
}
