//! How much of each boot image a BranchCache (PeerDist) client took from the server and how
//! much from peers, from the boot's download events.

use maud::{html, Markup};
use netboot_records::{EventDetail, PeerDistDelivery, StoredEvent};
use std::collections::BTreeMap;

use crate::html::bytes;

/// One image a client received Content Information for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageShare {
    /// Its length.
    pub(crate) content_bytes: u64,
    /// Bytes of the missing-data ranges the server sent.
    pub(crate) server_bytes: u64,
    /// How many such ranges.
    pub(crate) ranges: u64,
}

impl ImageShare {
    /// What the ranges did not cover came from peers.
    pub(crate) fn peer_bytes(&self) -> u64 {
        self.content_bytes.saturating_sub(self.server_bytes)
    }
}

/// Per path, the images of one boot that were delivered through PeerDist.
pub(crate) fn shares(events: &[StoredEvent]) -> BTreeMap<&str, ImageShare> {
    let mut shares: BTreeMap<&str, ImageShare> = BTreeMap::new();
    for event in events {
        let EventDetail::ImageDownload(download) = &event.detail else {
            continue;
        };
        match &download.peerdist {
            Some(PeerDistDelivery::ContentInformation { content_bytes, .. }) => {
                shares.entry(&download.path).or_default().content_bytes = *content_bytes;
            }
            Some(PeerDistDelivery::MissingData) => {
                let share = shares.entry(&download.path).or_default();
                share.server_bytes += download.bytes;
                share.ranges += 1;
            }
            Some(PeerDistDelivery::NotReady) | None => {}
        }
    }
    shares.retain(|_, share| share.content_bytes > 0);
    shares
}

/// A table of [`shares`], or nothing when the boot used no PeerDist.
pub(crate) fn table(events: &[StoredEvent]) -> Markup {
    let shares = shares(events);
    if shares.is_empty() {
        return html! {};
    }
    html! {
        table.events {
            thead { tr {
                th { "BranchCache image" } th { "Size" } th { "From the server" } th { "From peers" }
            } }
            tbody {
                @for (path, share) in shares {
                    tr {
                        td.mono { (path) }
                        td.num { (bytes(share.content_bytes)) }
                        td.num { (bytes(share.server_bytes)) " in " (share.ranges) " ranges" }
                        td.num { (bytes(share.peer_bytes())) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netboot_records::{ImageDownload, Stage};

    fn event(path: &str, bytes: u64, peerdist: Option<PeerDistDelivery>) -> StoredEvent {
        StoredEvent {
            id: 0,
            at: chrono::DateTime::UNIX_EPOCH,
            mac: "52:54:00:00:00:01".parse().unwrap(),
            uuid: None,
            stage: Stage::Image,
            ok: true,
            boot_start: false,
            duration_ms: Some(1),
            detail: EventDetail::ImageDownload(ImageDownload {
                path: path.into(),
                bytes,
                status: 200,
                peerdist,
                ..ImageDownload::default()
            }),
            host: None,
        }
    }

    #[test]
    fn missing_data_ranges_are_the_server_share_and_the_rest_came_from_peers() {
        let info = PeerDistDelivery::ContentInformation {
            version: "2.0".into(),
            content_bytes: 1_000_000,
        };
        let events = [
            event("wimboot", 60_000, None),
            event("boot.wim", 4_000, Some(info)),
            event("boot.wim", 131_072, Some(PeerDistDelivery::MissingData)),
            event("boot.wim", 131_072, Some(PeerDistDelivery::MissingData)),
            event("boot.sdi", 3_000_000, Some(PeerDistDelivery::NotReady)),
        ];
        let shares = shares(&events);
        assert_eq!(shares.len(), 1, "{shares:?}");
        let share = &shares["boot.wim"];
        assert_eq!(
            (share.server_bytes, share.ranges, share.peer_bytes()),
            (262_144, 2, 737_856)
        );
        assert!(table(&events).into_string().contains("in 2 ranges"));
        assert_eq!(table(&events[..1]).into_string(), "");
    }
}
