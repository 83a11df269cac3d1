//! A bounded, namespace-resolving element tree over quick-xml, just large enough for SOAP
//! envelopes of a few kilobytes.
//!
//! Discovery messages arrive as multicast datagrams from anyone on the link, so the tree is
//! built under hard limits: at most [`MAX_DEPTH`] levels and [`MAX_ELEMENTS`] elements, no
//! document type declaration (SOAP forbids one, and refusing it rules out entity expansion),
//! UTF-8 only. Namespace prefixes are resolved while parsing, so `<d:Probe>` and `<wsd:Probe>`
//! bound to the same URI are the same element, and the bindings in scope at each element are
//! kept for the QName values of `<wsd:Types>`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::DiscoveryError;

/// Deepest nesting accepted (a probe match is 7 levels deep).
pub(crate) const MAX_DEPTH: usize = 16;
/// Most elements accepted in one message.
pub(crate) const MAX_ELEMENTS: usize = 512;
/// Most namespace declarations accepted in one message.
const MAX_NAMESPACES: usize = 32;

/// One element: its resolved name, attributes, direct text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// Namespace URI, when the name is qualified or a default namespace is in scope.
    pub(crate) ns: Option<String>,
    /// Local name.
    pub(crate) local: String,
    /// Attributes other than namespace declarations: `(namespace, local name, value)`.
    pub(crate) attrs: Vec<(Option<String>, String, String)>,
    /// The element's own character data (CDATA included), entities resolved.
    pub(crate) text: String,
    /// Child elements in document order.
    pub(crate) children: Vec<Self>,
    /// Prefix bindings in scope here, innermost last (`""` is the default namespace).
    pub(crate) scope: Vec<(String, String)>,
}

impl Element {
    /// The first child called `local` in namespace `ns`.
    pub(crate) fn child(&self, ns: &str, local: &str) -> Option<&Self> {
        self.children
            .iter()
            .find(|c| c.ns.as_deref() == Some(ns) && c.local == local)
    }

    /// Every child called `local` in namespace `ns`.
    pub(crate) fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Self> {
        self.children
            .iter()
            .filter(move |c| c.ns.as_deref() == Some(ns) && c.local == local)
    }

    /// Follows a path of `(namespace, local name)` steps through first children.
    pub(crate) fn path(&self, steps: &[(&str, &str)]) -> Option<&Self> {
        steps
            .iter()
            .try_fold(self, |element, (ns, local)| element.child(ns, local))
    }

    /// The value of the unqualified attribute `local`.
    pub(crate) fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, name, _)| ns.is_none() && name == local)
            .map(|(_, _, value)| value.as_str())
    }

    /// Whether the element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    /// Resolves a `prefix:local` QName value with the bindings in scope here.
    pub(crate) fn resolve_qname(&self, qname: &str) -> Option<(String, String)> {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let ns = self
            .scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone())?;
        Some((ns, local.to_string()))
    }
}

/// Parses one XML document into its root element.
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, DiscoveryError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DiscoveryError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut builder = Builder::default();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| DiscoveryError::Xml(e.to_string()))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(DiscoveryError::Xml(format!(
                    "undeclared namespace prefix {:?}",
                    String::from_utf8_lossy(&prefix)
                )))
            }
        };
        match event {
            Event::Start(start) => {
                let element = builder.element(&reader, ns, &start)?;
                builder.open(element)?;
            }
            Event::Empty(start) => {
                let element = builder.element(&reader, ns, &start)?;
                builder.open(element)?;
                builder.close()?;
            }
            Event::End(_) => builder.close()?,
            Event::Text(text) => {
                let text = text
                    .xml_content()
                    .map_err(|e| DiscoveryError::Xml(e.to_string()))?;
                builder.text(&text)?;
            }
            Event::CData(data) => {
                let data = data.decode().map_err(|e| DiscoveryError::Xml(e.to_string()))?;
                builder.text(&data)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| DiscoveryError::Xml(e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|e| DiscoveryError::Xml(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| DiscoveryError::Xml(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                builder.text(&resolved)?;
            }
            Event::DocType(_) => return Err(DiscoveryError::Xml("a document type declaration".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    open: Vec<Element>,
    root: Option<Element>,
    elements: usize,
    namespaces: usize,
}

impl Builder {
    fn element(
        &mut self,
        reader: &NsReader<&[u8]>,
        ns: Option<String>,
        start: &BytesStart<'_>,
    ) -> Result<Element, DiscoveryError> {
        let xml = |e: &dyn std::fmt::Display| DiscoveryError::Xml(e.to_string());
        let local = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|e| xml(&e))?
            .to_string();
        let mut scope = self
            .open
            .last()
            .map(|parent| parent.scope.clone())
            .unwrap_or_default();
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| xml(&e))?;
            let value = attr.unescape_value().map_err(|e| xml(&e))?.into_owned();
            let key = attr.key.into_inner();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                self.namespaces += 1;
                if self.namespaces > MAX_NAMESPACES {
                    return Err(DiscoveryError::TooLarge("namespace declarations"));
                }
                let prefix = key.get(6..).unwrap_or_default();
                scope.push((String::from_utf8_lossy(prefix).into_owned(), value));
                continue;
            }
            let (resolved, name) = reader.resolve_attribute(attr.key);
            let ns = match resolved {
                ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(_) => return Err(xml(&"undeclared attribute prefix")),
            };
            attrs.push((ns, String::from_utf8_lossy(name.into_inner()).into_owned(), value));
        }
        Ok(Element {
            ns,
            local,
            attrs,
            text: String::new(),
            children: Vec::new(),
            scope,
        })
    }

    fn open(&mut self, element: Element) -> Result<(), DiscoveryError> {
        if self.root.is_some() {
            return Err(DiscoveryError::Xml("content after the root element".into()));
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(DiscoveryError::TooLarge("elements"));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(DiscoveryError::TooLarge("nesting"));
        }
        self.open.push(element);
        Ok(())
    }

    fn close(&mut self) -> Result<(), DiscoveryError> {
        let element = self
            .open
            .pop()
            .ok_or_else(|| DiscoveryError::Xml("an end tag without a start".into()))?;
        match self.open.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), DiscoveryError> {
        match self.open.last_mut() {
            Some(element) => element.text.push_str(text),
            None if text.trim().is_empty() => {}
            None => return Err(DiscoveryError::Xml("text outside the root element".into())),
        }
        Ok(())
    }

    fn finish(self) -> Result<Element, DiscoveryError> {
        if !self.open.is_empty() {
            return Err(DiscoveryError::Xml("the document ends inside an element".into()));
        }
        self.root
            .ok_or_else(|| DiscoveryError::Xml("no root element".into()))
    }
}

/// Escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve_and_scope_is_kept() {
        let root = parse(
            br#"<?xml version="1.0"?><a:E xmlns:a="urn:a" xmlns:b="urn:b"><b:T x="1">b:Q &amp; &#65;<![CDATA[<z>]]></b:T><U xmlns="urn:c"/></a:E>"#,
        )
        .unwrap();
        assert!(root.is("urn:a", "E"));
        let t = root.child("urn:b", "T").unwrap();
        assert_eq!(t.text, "b:Q & A<z>");
        assert_eq!(t.attr("x"), Some("1"));
        assert_eq!(t.resolve_qname("b:Q"), Some(("urn:b".into(), "Q".into())));
        assert_eq!(t.resolve_qname("c:Q"), None);
        assert!(root.child("urn:c", "U").is_some());
    }

    #[test]
    fn hostile_documents_are_refused() {
        for (doc, what) in [
            (&b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"[..], "doctype"),
            (b"<x>&a;</x>", "unknown entity"),
            (b"<p:x/>", "undeclared prefix"),
            (b"<x></y>", "mismatched end"),
            (b"<x>", "unterminated"),
            (b"<x/><y/>", "two roots"),
            (b"\xff<x/>", "not UTF-8"),
            (b"", "empty"),
        ] {
            assert!(parse(doc).is_err(), "{what}");
        }
        let deep = "<x>".repeat(MAX_DEPTH + 1) + &"</x>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(DiscoveryError::TooLarge("nesting")));
        let wide = format!("<x>{}</x>", "<y/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(wide.as_bytes()), Err(DiscoveryError::TooLarge("elements")));
    }
}
