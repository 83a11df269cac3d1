//! Entry points shared by the cargo-fuzz target and the corpus test.

use crate::http::{classify_request, response_content_length, Params};
use crate::wire::{ContentInfo, ContentInfoView, Version};

/// Parses arbitrary bytes as Content Information; whatever parses must re-encode to exactly
/// the same bytes, and walking its segments and blocks must stay inside the content's
/// arithmetic without panicking. The same bytes are also tried as PeerDist header values.
pub fn parse_round_trip(data: &[u8]) {
    if let Ok(view) = ContentInfoView::parse(data) {
        let owned = ContentInfo::parse(data).expect("a checked view parses");
        assert_eq!(
            owned.to_bytes().expect("parsed values encode"),
            data,
            "emit(parse(b)) == b"
        );
        let range = view.content_range();
        assert!(range.start <= range.end);
        for segment in view.segments() {
            let _ = segment.id();
            for block in segment.blocks() {
                assert!(block.range.start <= block.range.end);
                assert_eq!(block.hash.len(), view.hash_algorithm().digest_len());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        let (a, b, c) = (parts.next(), parts.next(), parts.next());
        let request = classify_request(a, b, c);
        let _ = request.choose(&Version::ALL);
        let _ = response_content_length(text);
        let params = Params::parse(text);
        let reparsed = params.to_string();
        assert_eq!(
            Params::parse(&reparsed),
            params,
            "parse(format(parse(t))) == parse(t)"
        );
    }
}
