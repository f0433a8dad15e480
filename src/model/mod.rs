//! The shared vocabulary on the ground floor: what an event gains on its way (enrichment, verdicts) and what alerts carry, so that every stage reads the same types and no lower stage imports a higher one.

pub mod enrichment;
pub mod verdict;

pub use enrichment::{
    Asset, BaselineFlags, Enrichment, GeoInfo, Identity, Network, PrincipalKind, Tier,
};
pub use verdict::{Gating, ResponseRequest, Severity, Threshold, Verdict, RESPONSE_KINDS};
