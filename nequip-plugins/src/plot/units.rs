//! Which physical quantity a metric measures, and its unit. nequip is unit-agnostic: the units
//! are those of the data; the labels assume eV and Å unless told otherwise.

/// The energy and length units of the data (for axis labels only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Units {
    pub energy: String,
    pub length: String,
}

impl Default for Units {
    fn default() -> Self {
        Units { energy: "eV".into(), length: "Å".into() }
    }
}

/// A physical quantity of a prediction or metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Quantity {
    Energy,
    EnergyPerAtom,
    Forces,
    Stress,
    /// A loss: the model's normalised units.
    Loss,
    /// A field without a known unit.
    Other,
}

impl Quantity {
    /// The unit, e.g. `eV/Å`; `None` for losses and unknown fields.
    pub fn unit(self, u: &Units) -> Option<String> {
        match self {
            Quantity::Energy => Some(u.energy.clone()),
            Quantity::EnergyPerAtom => Some(format!("{}/atom", u.energy)),
            Quantity::Forces => Some(format!("{}/{}", u.energy, u.length)),
            Quantity::Stress => Some(format!("{}/{}³", u.energy, u.length)),
            Quantity::Loss | Quantity::Other => None,
        }
    }

    /// In words: `force`, `energy per atom`, ...
    pub fn noun(self) -> &'static str {
        match self {
            Quantity::Energy => "energy",
            Quantity::EnergyPerAtom => "energy per atom",
            Quantity::Forces => "force",
            Quantity::Stress => "stress",
            Quantity::Loss => "loss",
            Quantity::Other => "value",
        }
    }
}

/// A metric column as nequip names it (`f_mae`, `H_f_rmse`, `e/N_mae`, `stress_mae_0`,
/// `loss_f`): the quantity and the statistic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricName {
    pub name: String,
    pub quantity: Quantity,
    /// `MAE` / `RMSE`, empty for losses and unknown names.
    pub statistic: &'static str,
}

impl MetricName {
    pub fn parse(name: &str) -> MetricName {
        if name == "loss" || name.starts_with("loss_") {
            return MetricName { name: name.into(), quantity: Quantity::Loss, statistic: "" };
        }
        // a per-component suffix `_0`, `_1`, ...
        let base = match name.rsplit_once('_') {
            Some((b, c)) if !c.is_empty() && c.bytes().all(|x| x.is_ascii_digit()) => b,
            _ => name,
        };
        let (field, statistic) = if let Some(f) = base.strip_suffix("_mae") {
            (f, "MAE")
        } else if let Some(f) = base.strip_suffix("_rmse") {
            (f, "RMSE")
        } else {
            (base, "")
        };
        // the field's abbreviation, possibly after a species prefix (`H_f`) or `psavg_`
        let is = |ab: &str| field == ab || field.ends_with(&format!("_{ab}"));
        let quantity = if is("f") || is("forces") {
            Quantity::Forces
        } else if is("e/N") || is("total_energy/N") {
            Quantity::EnergyPerAtom
        } else if is("e") || is("Ei") || is("total_energy") || is("atomic_energy") || is("virial") {
            Quantity::Energy
        } else if is("stress") {
            Quantity::Stress
        } else {
            Quantity::Other
        };
        MetricName { name: name.into(), quantity, statistic }
    }

    /// The axis label: the metric's name, what it measures and the unit,
    /// e.g. `f_mae: force MAE (eV/Å)`, `loss (normalised units)`.
    pub fn label(&self, units: &Units) -> String {
        match (self.quantity, self.quantity.unit(units)) {
            (Quantity::Loss, _) => format!("{} (normalised units)", self.name),
            (q, Some(u)) => format!("{}: {} {} ({u})", self.name, q.noun(), self.statistic).replace("  ", " "),
            (_, None) => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        let u = Units::default();
        assert_eq!(MetricName::parse("f_mae").label(&u), "f_mae: force MAE (eV/Å)");
        assert_eq!(MetricName::parse("H_f_rmse").quantity, Quantity::Forces);
        assert_eq!(MetricName::parse("psavg_f_mae").quantity, Quantity::Forces);
        assert_eq!(MetricName::parse("e/N_mae").label(&u), "e/N_mae: energy per atom MAE (eV/atom)");
        assert_eq!(MetricName::parse("e_rmse").quantity, Quantity::Energy);
        assert_eq!(MetricName::parse("stress_mae_4").label(&u), "stress_mae_4: stress MAE (eV/Å³)");
        assert_eq!(MetricName::parse("loss_f").label(&u), "loss_f (normalised units)");
        assert_eq!(MetricName::parse("h_mae").quantity, Quantity::Other);
        let kcal = Units { energy: "kcal/mol".into(), length: "Å".into() };
        assert_eq!(MetricName::parse("f_mae").label(&kcal), "f_mae: force MAE (kcal/mol/Å)");
    }
}
