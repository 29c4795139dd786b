//! Backends that run ring kernels. Today: `gpu`, wgpu on WebGPU (browser) or Vulkan, Metal,
//! DX12 and GL (native).

pub mod gpu;
