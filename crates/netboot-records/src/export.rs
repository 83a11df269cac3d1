//! CSV and JSON renderings of stored events, one row at a time so exports can stream.

use crate::store::StoredEvent;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row; the event's facts are one JSON column.
    Csv,
    /// A JSON array of event objects.
    Json,
}

impl ExportFormat {
    /// The HTTP content type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
        }
    }

    /// Text before the first row.
    #[must_use]
    pub fn begin(self) -> &'static str {
        match self {
            Self::Csv => "id,at,mac,uuid,stage,kind,ok,boot_start,duration_ms,detail\r\n",
            Self::Json => "[",
        }
    }

    /// Text after the last row.
    #[must_use]
    pub fn end(self) -> &'static str {
        match self {
            Self::Csv => "",
            Self::Json => "]\n",
        }
    }

    /// One row; `first` tells JSON whether a separator is needed.
    #[must_use]
    pub fn row(self, event: &StoredEvent, first: bool) -> String {
        match self {
            Self::Csv => csv_row(event),
            Self::Json => {
                let object = serde_json::to_string(event).unwrap_or_default();
                if first {
                    format!("\n{object}")
                } else {
                    format!(",\n{object}")
                }
            }
        }
    }
}

fn csv_field(text: &str) -> String {
    // Quote anything with a separator, quote or line break; a leading formula character is
    // prefixed so spreadsheets never execute client-supplied text.
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_row(event: &StoredEvent) -> String {
    let detail = serde_json::to_string(&event.detail).unwrap_or_default();
    let fields = [
        event.id.to_string(),
        event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event.mac.to_string(),
        event.uuid.map(|u| u.to_string()).unwrap_or_default(),
        event.stage.as_str().to_string(),
        event.detail.kind().to_string(),
        event.ok.to_string(),
        event.boot_start.to_string(),
        event.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        detail,
    ];
    let mut row = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
