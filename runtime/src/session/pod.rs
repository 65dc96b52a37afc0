//! `aya::Pod` wrappers for the ABI's types, so aya can read and write
//! them in maps. The ABI crate has no dependencies, so it cannot implement
//! aya's trait itself; nothing but these wrappers and their safety
//! arguments lives here.
use aya::Pod;
use tcpq_abi::{AggKey, AggValue, FieldLoc, ListenKey, Owner, TemplateConfig, TupleKey};

/// `aya::Pod` for the ABI types (the ABI crate has no dependencies).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodLoc(pub FieldLoc);
// SAFETY: FieldLoc is #[repr(C)], Copy, made of integers, with explicit
// padding fields; any bit pattern is valid.
unsafe impl Pod for PodLoc {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodConfig(pub TemplateConfig);
// SAFETY: as above; TemplateConfig and FilterInsn are #[repr(C)] integers
// with explicit padding.
unsafe impl Pod for PodConfig {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodAggKey(pub AggKey);
// SAFETY: an array of u64.
unsafe impl Pod for PodAggKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodSmallAggKey(pub tcpq_abi::SmallAggKey);
// SAFETY: an array of u64.
unsafe impl Pod for PodSmallAggKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(super) struct PodOwner(pub Owner);
// SAFETY: integers and a byte array, no padding.
unsafe impl Pod for PodOwner {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(super) struct PodListenKey(pub ListenKey);
// SAFETY: integers with an explicit padding field.
unsafe impl Pod for PodListenKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(super) struct PodTupleKey(pub TupleKey);
// SAFETY: integers, no implicit padding (4 + 2 + 2 + 32 bytes).
unsafe impl Pod for PodTupleKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PodAggValue(pub AggValue);
// SAFETY: one u64.
unsafe impl Pod for PodAggValue {}
