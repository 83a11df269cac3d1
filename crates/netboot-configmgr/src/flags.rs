//! `SMS_Advertisement.AdvertFlags` bits the rules read (values from the SMS_Advertisement
//! class documentation; note that `ENABLE_TS_FROM_CD_AND_PXE` is bit 18, not `0x2000`).

/// `IMMEDIATE`: run as soon as possible (mandatory).
pub const IMMEDIATE: u32 = 0x0000_0020;
/// `ONUSERLOGON` (mandatory).
pub const ON_USER_LOGON: u32 = 0x0000_0200;
/// `ONUSERLOGOFF` (mandatory).
pub const ON_USER_LOGOFF: u32 = 0x0000_0400;
/// `ENABLE_TS_FROM_CD_AND_PXE`: "Configuration Manager clients, media and PXE".
pub const CD_AND_PXE: u32 = 0x0004_0000;
/// `TARGETTOWINPE`: "Only media and PXE".
pub const TARGET_TO_WINPE: u32 = 0x1000_0000;
/// `HIDDENINWINPE`: "Only media and PXE (hidden)".
pub const HIDDEN_IN_WINPE: u32 = 0x2000_0000;

/// Any of the bits that make a deployment visible to PXE.
pub const PXE_MASK: u32 = CD_AND_PXE | TARGET_TO_WINPE | HIDDEN_IN_WINPE;
/// Bits that make a deployment mandatory when `OfferType` is not available.
pub const MANDATORY_MASK: u32 = IMMEDIATE | ON_USER_LOGON | ON_USER_LOGOFF;
