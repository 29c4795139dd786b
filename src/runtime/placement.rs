//! Several devices: where a launch goes, what the runtime reports about its devices, and live
//! migration between them (see [`crate::devices`] and [`crate::migration`]).

use super::{LaunchOptions, Runtime};
use crate::backend::Device;
use crate::devices::{self, DeviceId, DeviceInfo, DeviceRequirements, Topology};
use crate::error::{Error, Quoted, Result};
use crate::kernel::KernelDefinition;
use crate::migration::{self, MigrationReport};
use crate::table::Table;

impl Runtime {
    /// How many devices the runtime runs kernels on.
    pub fn device_count(&self) -> usize {
        self.shared.device_count()
    }

    /// Every device: adapter, limits, memory held there, kernels placed there, losses (the
    /// seed's `gpu_topology()`).
    pub fn gpu_topology(&self) -> Topology {
        self.topology_of(&self.shared.lock())
    }

    /// [`gpu_topology`](Self::gpu_topology) from the locked `table`.
    pub(super) fn topology_of(&self, table: &Table) -> Topology {
        let loads = crate::pressure::loads_by_device(&self.shared, table);
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut devices = Vec::new();
        for id in self.shared.device_ids() {
            let device = self.shared.device(id);
            let status = &table.devices[id.index()];
            let kernels = table.ids_where(&|k| k.device == id);
            devices.push(DeviceInfo {
                id,
                adapter: device.adapter().clone(),
                shared: device.gpu().is_some_and(|gpu| !gpu.owned),
                limits: device.memory_limits(),
                memory_bytes: loads[id.index()].bytes,
                messages_processed: status.messages_processed,
                queued: loads[id.index()].queued,
                kernels,
                lost: status.lost_reason(),
                losses: status.generation,
                recoveries: status.recoveries,
                ticks: status.ticks,
            });
        }
        Topology { devices }
    }

    /// The device the runtime's load balancing picks now among those that meet `requirements`
    /// and are not lost (the seed's `select_device(requirements)`): what a launch without a
    /// device would get (a launch also passes over devices that cannot run its kernel: a GPU
    /// one without WGSL or without a feature its handler enables, a cpu one without a host
    /// handler). `OutOfRange` when no device meets them; the loss when every one that does is
    /// lost.
    pub fn select_device(&self, requirements: &DeviceRequirements) -> Result<DeviceId> {
        let table = self.open_table()?;
        self.choose(&table, requirements, None)
    }

    /// The device kernel `id` runs on.
    pub fn device_of(&self, id: &str) -> Result<DeviceId> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.device)
    }

    /// Moves kernel `id`, live, to `device` (the seed's `kernel_migrator().migrate_kernel`): it
    /// keeps its id, handles, connections, counters and state, and every message accepted
    /// before, during and after the move is answered exactly once and in order (see
    /// [`MigrationReport`]). A kernel stranded on a lost device (`Failed`) moves too and runs
    /// again on `device`: recovery elsewhere (a move onto its own lost device is refused; one
    /// that its recovered device could not rebuild is built there again by a move there).
    /// Refused, changing nothing, with `KernelState` unless the kernel is launched, active,
    /// deactivated or stranded (also when a terminate or the runtime's shutdown overtakes the
    /// move), and when the target is lost or cannot compile it.
    pub async fn migrate(&self, id: &str, device: DeviceId) -> Result<MigrationReport> {
        self.migrate_from(id, None, device).await
    }

    /// [`migrate`](Self::migrate), refused (`InvalidArgument`, changing nothing) when the kernel
    /// is not on `source` as its move begins, a check made under the move's own lock.
    async fn migrate_from(&self, id: &str, source: Option<DeviceId>, device: DeviceId) -> Result<MigrationReport> {
        self.check_device(device)?;
        let _work = {
            let _running = self.open_table()?;
            self.shared.device_work()
        };
        migration::migrate(&self.shared, id, source, device).await
    }

    /// The seed's kernel migrator.
    pub fn kernel_migrator(&self) -> KernelMigrator {
        KernelMigrator { runtime: self.clone() }
    }

    /// `OutOfRange` unless the runtime has `device`.
    pub(crate) fn check_device(&self, device: DeviceId) -> Result<()> {
        let count = self.shared.device_count();
        if device.index() >= count {
            return Err(Error::OutOfRange(format!(
                "device {device} does not exist: the runtime has {count} device{} (0 to {})",
                if count == 1 { "" } else { "s" },
                count - 1
            )));
        }
        Ok(())
    }

    /// The device a launch of `definition` with `options` goes on: the one it names (which
    /// must meet its requirements), or the load balancer's pick among the devices that can run
    /// it; counts a round-robin turn.
    pub(super) fn place(
        &self,
        table: &mut Table,
        options: &LaunchOptions,
        definition: &KernelDefinition,
    ) -> Result<DeviceId> {
        let requirements = &options.requirements;
        if let Some(id) = options.device {
            self.check_device(id)?;
            let device = self.shared.device(id);
            if !meets(&device, requirements) {
                return Err(devices::not_met(
                    requirements,
                    &format!("device {id}, which the launch names, does not meet"),
                ));
            }
            if !device.runs(definition) {
                if let Some(other) = self.shared.device_ids().find(|&other| self.shared.device(other).runs(definition))
                {
                    return Err(cannot_run(definition, id, other));
                }
            }
            return Ok(id);
        }
        let device = self.choose(table, requirements, Some(definition))?;
        table.placed += 1;
        Ok(device)
    }

    /// The load balancer's pick among the devices that meet `requirements`, are not lost and
    /// can run `definition` (when any device of the runtime can) with the features its handler
    /// enables (when any device that meets `requirements` has them): otherwise compiling says why.
    fn choose(
        &self,
        table: &Table,
        requirements: &DeviceRequirements,
        definition: Option<&KernelDefinition>,
    ) -> Result<DeviceId> {
        let definition =
            definition.filter(|definition| self.shared.device_ids().any(|id| self.shared.device(id).runs(definition)));
        // Devices with the features its handler enables, when any that meets the requirements
        // has them (otherwise the launch goes where it would without them, and compiling says
        // which feature the device lacks, not that no device meets the requirements).
        let features = definition.filter(|definition| {
            self.shared.device_ids().any(|id| {
                let device = self.shared.device(id);
                device.runs(definition) && device.has_features(definition) && meets(&device, requirements)
            })
        });
        // A device that would do, lost or not.
        let fits = |device: &Device| {
            definition.is_none_or(|definition| device.runs(definition))
                && features.is_none_or(|definition| device.has_features(definition))
                && meets(device, requirements)
        };
        let mut eligible = Vec::new();
        for id in self.shared.device_ids() {
            eligible.push(table.devices[id.index()].lost.is_none() && fits(&self.shared.device(id)));
        }
        let count = eligible.len();
        // With one device to choose from every policy picks it, so the kernels are not weighed:
        // weighing them at every launch made launching N kernels cost O(N²).
        let chosen = match eligible.iter().filter(|&&eligible| eligible).count() {
            1 => eligible.iter().position(|&eligible| eligible).map(|index| DeviceId(index as u32)),
            _ => {
                let mut loads = crate::pressure::loads_by_device(&self.shared, table);
                for (load, eligible) in loads.iter_mut().zip(eligible) {
                    load.eligible = eligible;
                }
                devices::choose(&loads, self.inner.options.load_balancing, table.placed)
            }
        };
        chosen.ok_or_else(|| {
            // Every device that would do is lost: that is the reason, as on one device.
            let lost = self.shared.device_ids().find_map(|id| {
                let fits = fits(&self.shared.device(id));
                table.devices[id.index()].lost.clone().filter(|_| fits)
            });
            lost.unwrap_or_else(|| {
                let which =
                    match definition.filter(|d| self.shared.device_ids().any(|id| !self.shared.device(id).runs(d))) {
                        Some(d) => {
                            format!("no device of the runtime's {count} that can run kernel {} meets", Quoted(&d.id))
                        }
                        None => format!("no device of the runtime's {count} meets"),
                    };
                devices::not_met(requirements, &which)
            })
        })
    }

    /// `reason` about device `id`, naming the device when the runtime has several.
    pub(crate) fn name_device(&self, id: usize, reason: String) -> String {
        match self.shared.device_count() {
            1 => reason,
            _ => format!("device {id}: {reason}"),
        }
    }
}

/// Whether `device` meets a launch's `requirements` (its backend, its memory limits).
fn meets(device: &Device, requirements: &DeviceRequirements) -> bool {
    requirements.met_by(&device.adapter().backend, &device.memory_limits())
}

/// `KernelCompile` for `definition` named onto device `id`, which cannot run it, while device
/// `other` can.
fn cannot_run(definition: &KernelDefinition, id: DeviceId, other: DeviceId) -> Error {
    let message = match definition.has_wgsl() {
        true => format!(
            "device {id} is a cpu device, which runs host handlers, and it has none; its WGSL runs on device {other}"
        ),
        false => format!(
            "device {id} runs WGSL, which it has none of; its host handler runs on device {other}, a cpu device"
        ),
    };
    Error::KernelCompile { id: definition.id.clone(), message, line: None, column: None }
}

/// Moves kernels between a runtime's devices (the seed's `runtime.kernel_migrator()`).
#[derive(Clone, Debug)]
pub struct KernelMigrator {
    runtime: Runtime,
}

impl KernelMigrator {
    /// Moves kernel `id` from `source` to `target` ([`Runtime::migrate`]); `InvalidArgument`,
    /// changing nothing, when the kernel is not on `source`.
    pub async fn migrate_kernel(&self, id: &str, source: DeviceId, target: DeviceId) -> Result<MigrationReport> {
        self.runtime.migrate_from(id, Some(source), target).await
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use crate::backend::gpu::tests::application_device;
    use crate::backend::{BackendChoice, StateStore};
    use crate::devices::DeviceId;
    use crate::error::Error;
    use crate::kernel::{doubler_request, doubler_response, host, KernelDefinition, StateElement};
    use crate::{DeviceSpec, KernelState, LaunchOptions, Runtime, RuntimeOptions};

    /// A kernel that never checkpoints, whose device is lost the way a driver reset loses it
    /// (the device destroyed under the runtime) just before it migrates: whether the device's
    /// lost callback or the migration's own read of the state finds the loss first, the device
    /// is declared lost and the kernel moves as a stranded one, with its last checkpoint (none:
    /// its state as launched), never as if that checkpoint were its state on a working device.
    #[test]
    fn a_kernel_whose_device_is_lost_as_it_migrates_moves_with_its_last_checkpoint() {
        let two = RuntimeOptions::default().with_devices([DeviceSpec::default(), DeviceSpec::default()]);
        let rt = pollster::block_on(Runtime::new(two)).expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        pollster::block_on(async {
            let counter = KernelDefinition::new(
                "counter",
                doubler_request(),
                doubler_response(),
                "fn handle(msg: Request) -> Response { atomicAdd(&state[0], 1); return Response(msg.value); }",
            )
            .with_state(StateElement::AtomicI32, 4);
            let options = LaunchOptions::default().on_device(DeviceId(0)).with_auto_activate();
            rt.launch_definition(counter, options.with_checkpoint_interval(Duration::MAX)).await.unwrap();
            for value in 1..=5 {
                assert_eq!(rt.call_pod::<i32, i32>("counter", &value, Some(Duration::from_secs(30))).await, Ok(value));
            }
            rt.shared.device(DeviceId(0)).gpu().expect("a GPU device").destroy("driver reset");
            let report = rt.migrate("counter", DeviceId(1)).await.unwrap();
            assert_eq!((report.from, report.to), (DeviceId(0), DeviceId(1)));
            assert_eq!(rt.summary().device.losses, 1, "the failed read declared the device lost");
            assert_eq!(rt.state("counter").unwrap(), KernelState::Active);
            assert_eq!(rt.read_state_as::<i32>("counter").await.unwrap(), [0; 4], "its state as launched");
            assert_eq!(rt.call_pod::<i32, i32>("counter", &6, Some(Duration::from_secs(30))).await, Ok(6));
            assert_eq!(rt.read_state_as::<i32>("counter").await.unwrap()[0], 1);
        });
    }

    /// The state a move writes on the application's device is the runtime's own work, in its
    /// error scope: a write wgpu refuses (past the end of the state array: no public call
    /// makes one) is that device's fault, not an error for the application's handler.
    #[test]
    fn a_moved_kernels_state_refused_on_the_applications_device_is_the_runtimes_fault() {
        let (shared, _device, heard) = application_device();
        let options =
            RuntimeOptions::default().with_devices([DeviceSpec::new(BackendChoice::Cpu)]).with_shared_device(shared);
        let rt = pollster::block_on(Runtime::new(options)).unwrap();
        let counter = KernelDefinition::new(
            "count",
            doubler_request(),
            doubler_response(),
            "fn handle(msg: Request) -> Response { return Response(atomicAdd(&state[0], 1)); }",
        )
        .with_state(StateElement::AtomicI32, 2)
        .with_host_handler(host::typed(|_: &i32, state: &mut [u32]| Some(state[0] as i32)));
        pollster::block_on(rt.launch_definition(counter, LaunchOptions::default().on_device(DeviceId(0)))).unwrap();
        if let Some(StateStore::Cpu(words)) = &rt.shared.lock().kernels["count"].resources.state {
            words.lock().unwrap().resize(4096, 7);
        }

        pollster::block_on(rt.migrate("count", DeviceId(1))).unwrap();
        assert!(heard.lock().unwrap().is_empty(), "{:?}", heard.lock().unwrap());
        let Some(Error::DeviceLost { reason }) = rt.shared.device(DeviceId(1)).fault() else { panic!("no fault") };
        assert!(reason.starts_with("GPU validation error in the runtime's own work: "), "{reason}");
    }
}
