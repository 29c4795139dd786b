//! Optional device features a handler may use. Every device opens with those of them its
//! adapter has (they cost nothing unused), and a handler's `enable` directives say which it
//! needs, so placement passes over the devices without them and a launch onto one is refused by
//! naming the feature, not with the WGSL compiler's "not supported in the current environment"
//! at a line of generated code.

use std::fmt;

/// An optional WebGPU feature that the runtime turns on where the adapter has it, so that
/// handlers can use it (serialized, and in JavaScript, by its WebGPU name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum DeviceFeature {
    /// `shader-f16`: 16-bit floats (`f16`, `vec4h`, the `h` suffix) in WGSL after `enable f16;`.
    #[serde(rename = "shader-f16")]
    ShaderF16,
}

impl DeviceFeature {
    /// Every feature the runtime knows, in one order.
    pub const ALL: [DeviceFeature; 1] = [DeviceFeature::ShaderF16];

    /// Its WebGPU name (a `GPUFeatureName`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceFeature::ShaderF16 => "shader-f16",
        }
    }

    /// The WGSL `enable` extension that needs it.
    pub fn extension(self) -> &'static str {
        match self {
            DeviceFeature::ShaderF16 => "f16",
        }
    }

    /// The feature WGSL's `enable extension;` needs, if the runtime knows one.
    pub(crate) fn for_extension(extension: &str) -> Option<DeviceFeature> {
        Self::ALL.into_iter().find(|feature| feature.extension() == extension)
    }

    /// wgpu's flag for it.
    pub(crate) fn wgpu(self) -> wgpu::Features {
        match self {
            DeviceFeature::ShaderF16 => wgpu::Features::SHADER_F16,
        }
    }

    /// The features among [`ALL`](Self::ALL) that `features` has.
    pub(crate) fn among(features: wgpu::Features) -> Vec<DeviceFeature> {
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut among = Vec::new();
        for feature in Self::ALL {
            if features.contains(feature.wgpu()) {
                among.push(feature);
            }
        }
        among
    }

    /// Every feature of [`ALL`](Self::ALL), as wgpu's flags: what a device asks its adapter for.
    pub(crate) fn wanted() -> wgpu::Features {
        Self::ALL.into_iter().fold(wgpu::Features::empty(), |all, feature| all | feature.wgpu())
    }
}

impl fmt::Display for DeviceFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_found_by_their_extension_and_by_wgpu_flags() {
        assert_eq!(DeviceFeature::for_extension("f16"), Some(DeviceFeature::ShaderF16));
        assert_eq!(DeviceFeature::for_extension("subgroups"), None);
        assert_eq!(
            DeviceFeature::among(wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
            [DeviceFeature::ShaderF16]
        );
        assert!(DeviceFeature::among(wgpu::Features::SUBGROUP).is_empty());
        assert_eq!(DeviceFeature::wanted(), wgpu::Features::SHADER_F16);
        assert_eq!(DeviceFeature::ShaderF16.to_string(), "shader-f16");
    }
}
