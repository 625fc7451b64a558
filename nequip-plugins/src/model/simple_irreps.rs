//! `SimpleIrrepsConfig`: port of `nequip/model/_eng.py::SimpleIrrepsConfig`.
//! Expands the simple keys `l_max`, `parity`, `num_features` into the four irreps keys.

use nequip_core::config::{Config, Source, Value};
use nequip_core::registry::BuildError;
use nequip_core::{auto_init, builder};

/// The keys `SimpleIrrepsConfig` reads.
#[auto_init]
pub struct SimpleIrrepsKeys {
    /// Maximum rotation order of features and edge spherical harmonics.
    pub l_max: Option<i64>,
    /// Include odd-parity features; edge SH parity `(-1)^l` if true.
    pub parity: Option<bool>,
    /// Multiplicity of every feature irrep.
    pub num_features: Option<i64>,
    /// Irreps of the embedded species (full form; must agree with the simple keys if both given).
    pub chemical_embedding_irreps_out: Option<String>,
    /// Hidden feature irreps (full form).
    pub feature_irreps_hidden: Option<String>,
    /// Edge spherical-harmonic irreps (full form).
    pub irreps_edge_sh: Option<Value>,
    /// Hidden scalars of the output block (full form).
    pub conv_to_output_hidden_irreps_out: Option<String>,
}

const NAME: &str = "SimpleIrrepsConfig";

/// Builder that pre-processes options to allow "simple" configuration of irreps.
#[builder(name = "SimpleIrrepsConfig", kind = model_builder)]
pub fn simple_irreps_config(config: &mut Config, keys: SimpleIrrepsKeys) -> Result<(), BuildError> {
    let invalid = |message: String| BuildError::Invalid { builder: NAME.into(), message };
    let has_simple = keys.l_max.is_some() || keys.parity.is_some() || keys.num_features.is_some();
    let has_full = keys.chemical_embedding_irreps_out.is_some()
        || keys.feature_irreps_hidden.is_some()
        || keys.irreps_edge_sh.is_some()
        || keys.conv_to_output_hidden_irreps_out.is_some();
    if !has_simple && !has_full {
        return Err(invalid("give either `l_max`, `parity` and `num_features`, or the full irreps keys (`feature_irreps_hidden`, `irreps_edge_sh`, ...)".into()));
    }
    if !has_simple {
        return Ok(());
    }
    let (Some(l_max), Some(parity), Some(f)) = (keys.l_max, keys.parity, keys.num_features) else {
        let missing: Vec<&str> = [("l_max", keys.l_max.is_none()), ("parity", keys.parity.is_none()), ("num_features", keys.num_features.is_none())]
            .into_iter()
            .filter_map(|(k, m)| m.then_some(k))
            .collect();
        return Err(invalid(format!("missing {} (the simple irreps keys go together)", missing.join(", "))));
    };
    if l_max < 0 || f < 1 {
        return Err(invalid(format!("need l_max >= 0 and num_features >= 1, got l_max={l_max}, num_features={f}")));
    }
    let update = simple_irreps(l_max, parity, f);
    for (k, v) in update {
        if let Some(existing) = config.get(k) {
            if existing.as_str() != Some(v.as_str()) {
                return Err(invalid(format!("`{k}` is {} but the simple keys give \"{v}\"; remove one of them", nequip_core::config::yaml::render(existing))));
            }
        }
        config.set(k, Value::String(v), Source::SetBy(NAME.into()));
    }
    Ok(())
}

/// The four irreps strings, exactly as e3nn prints them.
pub fn simple_irreps(l_max: i64, parity: bool, f: i64) -> [(&'static str, String); 4] {
    let p = |l: i64, odd: bool| format!("{l}{}", if odd { 'o' } else { 'e' });
    let sh = (0..=l_max).map(|l| format!("1x{}", p(l, parity && l % 2 == 1))).collect::<Vec<_>>().join("+");
    let parities: &[bool] = if parity { &[false, true] } else { &[false] };
    let hidden = parities.iter().flat_map(|odd| (0..=l_max).map(move |l| format!("{f}x{}", p(l, *odd)))).collect::<Vec<_>>().join("+");
    [
        ("chemical_embedding_irreps_out", format!("{f}x0e")),
        ("irreps_edge_sh", sh),
        ("feature_irreps_hidden", hidden),
        ("conv_to_output_hidden_irreps_out", format!("{}x0e", (f / 2).max(1))),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn irreps_strings_match_e3nn() {
        let u = super::simple_irreps(2, true, 16);
        assert_eq!(u[0].1, "16x0e");
        assert_eq!(u[1].1, "1x0e+1x1o+1x2e");
        assert_eq!(u[2].1, "16x0e+16x1e+16x2e+16x0o+16x1o+16x2o");
        assert_eq!(u[3].1, "8x0e");
        let u = super::simple_irreps(1, false, 1);
        assert_eq!(u[1].1, "1x0e+1x1e");
        assert_eq!(u[2].1, "1x0e+1x1e");
        assert_eq!(u[3].1, "1x0e");
    }
}
