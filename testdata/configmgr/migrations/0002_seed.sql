-- A small site (code PS1, plus the unknown-computer pair of a second primary site PS2) with one
-- machine per rule the resolver implements. The crate's tests name these machines; see
-- testdata/configmgr/README.md for the table of cases.
--
-- AdvertFlags: 0x00040000 = 262144 ENABLE_TS_FROM_CD_AND_PXE, 0x10000000 = 268435456
-- TARGETTOWINPE ("only media and PXE"), 0x20000000 = 536870912 HIDDENINWINPE,
-- 0x20 IMMEDIATE. OfferType: 0 required, 2 available.

INSERT INTO v_R_System VALUES
 (16777220, 'PC-AVAIL',   'PC-AVAIL',   '4C4C4544-0001-4A10-8000-B1C04F000001', 'GUID:0001', 1, 1, 0, 0),
 (16777221, 'PC-REQ',     'PC-REQ',     '4C4C4544-0002-4A10-8000-B1C04F000002', 'GUID:0002', 1, 1, 0, 0),
 (16777222, 'PC-BOTH',    'PC-BOTH',    '4C4C4544-0003-4A10-8000-B1C04F000003', 'GUID:0003', 1, 1, 0, 0),
 (16777223, 'PC-GUIDONLY','PC-GUIDONLY','4C4C4544-0004-4A10-8000-B1C04F000004', 'GUID:0004', 1, 1, 0, 0),
 (16777224, 'PC-MACONLY', 'PC-MACONLY', NULL,                                   'GUID:0005', 0, 1, 0, 0),
 (16777225, 'PC-AVAIL-OLD','PC-AVAIL',  '4C4C4544-00FF-4A10-8000-B1C04F0000FF', 'GUID:00FF', 1, 0, 1, 0),
 (16777226, 'PC-RAN',     'PC-RAN',     '4C4C4544-0006-4A10-8000-B1C04F000006', 'GUID:0006', 1, 1, 0, 0),
 (16777227, 'PC-RULES',   'PC-RULES',   '4C4C4544-0007-4A10-8000-B1C04F000007', 'GUID:0007', 1, 1, 0, 0),
 (16777228, 'PC-NOTHING', 'PC-NOTHING', '4C4C4544-0008-4A10-8000-B1C04F000008', 'GUID:0008', 1, 1, 0, 0),
 (16777229, 'PC-DONGLE-A','PC-DONGLE-A','4C4C4544-0009-4A10-8000-B1C04F000009', 'GUID:0009', 1, 1, 0, 0),
 (16777230, 'PC-DONGLE-B','PC-DONGLE-B','4C4C4544-000A-4A10-8000-B1C04F00000A', 'GUID:000A', 1, 1, 0, 0),
 (16777231, 'PC-RETIRED', 'PC-RETIRED', '4C4C4544-000B-4A10-8000-B1C04F00000B', 'GUID:000B', 1, 0, 0, 1);

INSERT INTO v_RA_System_MACAddresses VALUES
 (16777220, '00:15:5D:00:00:01'),
 (16777221, '00:15:5D:00:00:02'),
 (16777222, '00:15:5D:00:00:03'),
 (16777223, '00:15:5D:00:00:04'),
 (16777224, '00:15:5D:00:00:05'),
 (16777225, '00:15:5D:00:00:01'),
 (16777226, '00:15:5D:00:00:06'),
 (16777227, '00:15:5D:00:00:07'),
 (16777228, '00:15:5D:00:00:08'),
 (16777229, '00:15:5D:00:00:99'),
 (16777230, '00:15:5D:00:00:99'),
 (16777231, '00:15:5D:00:00:0B');

INSERT INTO v_R_UnknownSystem VALUES
 (2046820352, 'x86 Unknown Computer (x86 Unknown Computer)', 'x86', '43f3ea13-5b8f-4f2c-a4cf-4e1a8f2e2d10', 0, 'PS1'),
 (2046820353, 'x64 Unknown Computer (x64 Unknown Computer)', 'x64', '5e9a2f0b-8b1c-4e4e-9b0e-6a51d0f1c3a2', 0, 'PS1'),
 (2046820368, 'x86 Unknown Computer (x86 Unknown Computer)', 'x86', '0b7d1c8e-2f6a-4d8b-8a4e-1c2d3e4f5a60', 0, 'PS2'),
 (2046820369, 'x64 Unknown Computer (x64 Unknown Computer)', 'x64', '9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d', 0, 'PS2');

INSERT INTO v_Collection VALUES
 ('PS100020', 'OSD - Windows 11 (available)'),
 ('PS100021', 'OSD - Windows 11 (required)'),
 ('PS100022', 'OSD - rule checks'),
 ('PS100023', 'OSD - ARM64 devices'),
 ('SMS000US', 'All Unknown Computers');

INSERT INTO v_FullCollectionMembership VALUES
 ('PS100020', 16777220, 5, 'PC-AVAIL', 'PS1'),
 ('PS100021', 16777221, 5, 'PC-REQ', 'PS1'),
 ('PS100020', 16777222, 5, 'PC-BOTH', 'PS1'),
 ('PS100021', 16777222, 5, 'PC-BOTH', 'PS1'),
 ('PS100020', 16777223, 5, 'PC-GUIDONLY', 'PS1'),
 ('PS100021', 16777224, 5, 'PC-MACONLY', 'PS1'),
 ('PS100021', 16777225, 5, 'PC-AVAIL-OLD', 'PS1'),
 ('PS100021', 16777226, 5, 'PC-RAN', 'PS1'),
 ('PS100022', 16777227, 5, 'PC-RULES', 'PS1'),
 ('PS100020', 16777229, 5, 'PC-DONGLE-A', 'PS1'),
 ('PS100021', 16777230, 5, 'PC-DONGLE-B', 'PS1'),
 ('PS100020', 16777231, 5, 'PC-RETIRED', 'PS1'),
 ('PS100023', 16777227, 5, 'PC-RULES', 'PS1'),
 ('SMS000US', 2046820352, 2, 'x86 Unknown Computer (x86 Unknown Computer)', 'PS1'),
 ('SMS000US', 2046820353, 2, 'x64 Unknown Computer (x64 Unknown Computer)', 'PS1'),
 ('SMS000US', 2046820368, 2, 'x86 Unknown Computer (x86 Unknown Computer)', 'PS2'),
 ('SMS000US', 2046820369, 2, 'x64 Unknown Computer (x64 Unknown Computer)', 'PS2');

INSERT INTO v_BootImagePackage VALUES
 ('PS100003', 'Boot image (x86)',   'x86',   3, '\\cm01\sources\boot\x86\boot.wim',   '10.0.19041.1'),
 ('PS100004', 'Boot image (x64)',   'x64',   7, '\\cm01\sources\boot\x64\boot.wim',   '10.0.26100.1'),
 ('PS100005', 'Boot image (ARM64)', 'arm64', 2, '\\cm01\sources\boot\arm64\boot.wim', '10.0.26100.1'),
 ('PS100006', 'Boot image (x64, not on this server)', 'x64', 1, '\\cm01\sources\boot\x64b\boot.wim', '10.0.22621.1');

INSERT INTO v_TaskSequencePackage VALUES
 ('PS100010', 'Windows 11 Enterprise 24H2',       'Bare-metal build',            'PS100004'),
 ('PS100011', 'Windows 11 Enterprise (required)', 'Rebuild on next PXE boot',    'PS100004'),
 ('PS100012', 'Capture reference image',          'No boot image assigned',      ''),
 ('PS100013', 'Windows 10 x86 legacy',            'Old x86 build',               'PS100003'),
 ('PS100014', 'Windows Server 2025',              'Boot image not copied here',  'PS100006'),
 ('PS100015', 'Windows 11 ARM64',                 'ARM64 build',                 'PS100005'),
 ('PS100016', 'Hardware inventory (WinPE)',       'Media and PXE only',          'PS100004'),
 ('PS100017', 'BIOS to UEFI conversion',          'Hidden, only by preferred ID', 'PS100004'),
 ('PS100018', 'Windows 11 (expired)',             'Old deployment',              'PS100004'),
 ('PS100019', 'Windows 12 preview',               'Not yet available',           'PS100004'),
 ('PS10001A', 'Office install',                   'Not enabled for PXE',         'PS100004');

-- Times default to 1990-01-01 as ConfigMgr stores them when a time is not enabled.
INSERT INTO v_Advertisement VALUES
 ('PS120001', 'Windows 11 - available', 'PS100010', '*', 'PS100020', 262144,    8192, 2, '2024-01-01 08:00:00', 1, 0, '1990-01-01 00:00:00', 0, 0, 0, 1,  'PS1'),
 ('PS120002', 'Windows 11 - required',  'PS100011', '*', 'PS100021', 262176,    8192, 0, '2024-01-01 08:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 1, 33, 'PS1'),
 ('PS120003', 'Expired',                'PS100018', '*', 'PS100022', 262144,    8192, 2, '2020-01-01 00:00:00', 1, 1, '2021-01-01 00:00:00', 1, 1, 0, 99, 'PS1'),
 ('PS120004', 'Not yet started',        'PS100019', '*', 'PS100022', 262144,    8192, 2, '2099-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120005', 'Not for PXE',            'PS10001A', '*', 'PS100022', 0,         8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120006', 'No boot image',          'PS100012', '*', 'PS100022', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120007', 'x86 boot image',         'PS100013', '*', 'PS100022', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120008', 'Image not here',         'PS100014', '*', 'PS100022', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120009', 'Media and PXE only',     'PS100016', '*', 'PS100022', 268435456, 8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS12000A', 'Hidden',                 'PS100017', '*', 'PS100022', 536870912, 8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS12000B', 'ARM64 build',            'PS100015', '*', 'PS100023', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120020', 'Unknown - Windows 11',   'PS100010', '*', 'SMS000US', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1'),
 ('PS120021', 'Unknown - Windows 10 x86','PS100013','*', 'SMS000US', 262144,    8192, 2, '2024-01-01 00:00:00', 1, 1, '1990-01-01 00:00:00', 0, 0, 0, 33, 'PS1');

INSERT INTO LastPXEAdvertisement VALUES
 (16777226, 'PS120002', '2025-06-01 10:00:00', '00:15:5D:00:00:06', '4C4C4544-0006-4A10-8000-B1C04F000006', 'PC-RAN');
