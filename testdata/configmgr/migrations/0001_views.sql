-- Tables named and typed like the ConfigMgr site database views the resolver reads.
-- Column names follow the documented views (v_R_System, v_Advertisement, ...); types are the
-- SQL Server ones spelled so SQLite keeps them as declared types, which the TDS test endpoint
-- uses to choose wire types (INTEGER -> int, DATETIME -> datetime, TEXT -> nvarchar).

CREATE TABLE v_R_System (
    ResourceID INTEGER PRIMARY KEY,
    Name0 TEXT,
    Netbios_Name0 TEXT,
    SMBIOS_GUID0 TEXT,
    SMS_Unique_Identifier0 TEXT,
    Client0 INTEGER,
    Active0 INTEGER,
    Obsolete0 INTEGER,
    Decommissioned0 INTEGER
);

CREATE TABLE v_RA_System_MACAddresses (
    ResourceID INTEGER NOT NULL,
    MAC_Addresses0 TEXT NOT NULL
);

CREATE TABLE v_R_UnknownSystem (
    ResourceID INTEGER PRIMARY KEY,
    Name0 TEXT,
    CPUType0 TEXT,
    SMS_Unique_Identifier0 TEXT,
    Decommissioned0 INTEGER,
    SiteCode0 TEXT
);

CREATE TABLE v_Collection (
    CollectionID TEXT PRIMARY KEY,
    Name TEXT
);

CREATE TABLE v_FullCollectionMembership (
    CollectionID TEXT NOT NULL,
    ResourceID INTEGER NOT NULL,
    ResourceType INTEGER,
    Name TEXT,
    SiteCode TEXT
);

CREATE TABLE v_Advertisement (
    AdvertisementID TEXT PRIMARY KEY,
    AdvertisementName TEXT,
    PackageID TEXT,
    ProgramName TEXT,
    CollectionID TEXT,
    AdvertFlags INTEGER,
    RemoteClientFlags INTEGER,
    OfferType INTEGER,
    PresentTime DATETIME,
    PresentTimeEnabled INTEGER,
    PresentTimeIsGMT INTEGER,
    ExpirationTime DATETIME,
    ExpirationTimeEnabled INTEGER,
    ExpirationTimeIsGMT INTEGER,
    AssignedScheduleEnabled INTEGER,
    TimeFlags INTEGER,
    SourceSite TEXT
);

CREATE TABLE v_TaskSequencePackage (
    PackageID TEXT PRIMARY KEY,
    Name TEXT,
    Description TEXT,
    BootImageID TEXT
);

CREATE TABLE v_BootImagePackage (
    PackageID TEXT PRIMARY KEY,
    Name TEXT,
    Architecture TEXT,
    SourceVersion INTEGER,
    PkgSourcePath TEXT,
    ImageOSVersion TEXT
);

CREATE TABLE v_DeploymentSummary (
    CollectionID TEXT,
    PackageID TEXT,
    ProgramName TEXT,
    SoftwareName TEXT,
    FeatureType INTEGER,
    DeploymentIntent INTEGER,
    DeploymentTime DATETIME,
    EnforcementDeadline DATETIME,
    AssignmentID INTEGER
);

CREATE TABLE v_DistributionPoint (
    PackageID TEXT,
    ServerNALPath TEXT,
    SiteCode TEXT
);

CREATE TABLE LastPXEAdvertisement (
    MachineID INTEGER,
    AdvertisementID TEXT,
    LastPXEAdvertisementTime DATETIME,
    MAC_Addresses TEXT,
    SMBIOS_GUID TEXT,
    NetbiosName TEXT
);

CREATE INDEX mac_by_address ON v_RA_System_MACAddresses (MAC_Addresses0);
CREATE INDEX system_by_guid ON v_R_System (SMBIOS_GUID0);
CREATE INDEX membership_by_resource ON v_FullCollectionMembership (ResourceID);
CREATE INDEX advertisement_by_collection ON v_Advertisement (CollectionID);
