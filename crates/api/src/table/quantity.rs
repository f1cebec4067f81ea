//! Canonical `resource.Quantity` strings. Upstream prints quantities through
//! `Quantity.String()`, which re-renders them canonically (`1000m` → `1`, `2048Mi` → `2Gi`,
//! `0.5` → `500m`); stored objects may still hold what the user wrote, so the printers
//! canonicalize before showing capacities, quota usage and metric targets.

/// The canonical form of a quantity string as `Quantity.String()` renders it, or `None` when
/// `s` is not a valid quantity.
pub fn canonical_quantity(s: &str) -> Option<String> {
    crate::quantity::Qty::parse(s).ok().map(|q| q.to_string())
}
