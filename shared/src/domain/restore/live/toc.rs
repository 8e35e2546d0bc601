//! The table of contents of a dump, as `pg_restore --list` prints it.

/// One line of `pg_restore --list`: `<id>; <catalog> <oid> <type> <schema> <tag> <owner>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    pub line: String,
    pub kind: String,
    /// `-` for objects of no schema.
    pub schema: String,
    pub tag: String,
    /// Empty for extensions.
    pub owner: String,
}

/// Entry types of more than one word, longest first (pg_dump's `desc` strings).
const MULTI_WORD_KINDS: &[&str] = &[
    "PUBLICATION TABLES IN SCHEMA",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "MATERIALIZED VIEW DATA",
    "FOREIGN DATA WRAPPER",
    "TEXT SEARCH TEMPLATE",
    "TEXT SEARCH PARSER",
    "SEQUENCE OWNED BY",
    "PUBLICATION TABLE",
    "MATERIALIZED VIEW",
    "CHECK CONSTRAINT",
    "LARGE OBJECTS",
    "OPERATOR CLASS",
    "OPERATOR FAMILY",
    "BLOB METADATA",
    "EVENT TRIGGER",
    "FOREIGN TABLE",
    "FK CONSTRAINT",
    "ROW SECURITY",
    "SEQUENCE SET",
    "TABLE ATTACH",
    "INDEX ATTACH",
    "USER MAPPING",
    "LARGE OBJECT",
    "DEFAULT ACL",
    "TABLE DATA",
];

impl TocEntry {
    /// The entry on `line`, if it is one (comments start with `;`).
    pub fn parse(line: &str) -> Option<TocEntry> {
        let (id, rest) = line.split_once("; ")?;
        id.trim().parse::<u32>().ok()?;
        let mut fields = rest.splitn(3, ' ');
        let (_catalog, _oid, rest) = (fields.next()?, fields.next()?, fields.next()?);
        let kind = MULTI_WORD_KINDS
            .iter()
            .find(|kind| rest.starts_with(*kind) && rest[kind.len()..].starts_with(' '))
            .map(|kind| (*kind).to_owned())
            .unwrap_or_else(|| rest.split(' ').next().unwrap_or_default().to_owned());
        let rest = rest.get(kind.len() + 1..)?;
        let (schema, rest) = rest.split_once(' ')?;
        let (tag, owner) = rest.rsplit_once(' ')?;
        Some(TocEntry {
            line: line.to_owned(),
            kind,
            schema: schema.to_owned(),
            tag: tag.to_owned(),
            owner: owner.to_owned(),
        })
    }

    pub(super) fn is_data(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "TABLE DATA" | "SEQUENCE SET" | "MATERIALIZED VIEW DATA" | "BLOBS" | "LARGE OBJECTS"
        )
    }

    /// The schema an entry of no schema is about (`SCHEMA x`, its comment and privileges).
    pub(super) fn schema_named(&self) -> Option<&str> {
        match self.kind.as_str() {
            "SCHEMA" => Some(self.tag.as_str()),
            "COMMENT" | "ACL" => self.tag.strip_prefix("SCHEMA "),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> TocEntry {
        TocEntry::parse(line).unwrap_or_else(|| panic!("{line}"))
    }

    #[test]
    fn table_of_contents_lines_are_read() {
        let data = entry("3518; 0 16455 TABLE DATA auth users supabase_auth_admin");
        assert_eq!((data.kind.as_str(), data.schema.as_str(), data.tag.as_str()), ("TABLE DATA", "auth", "users"));
        assert_eq!(data.owner, "supabase_auth_admin");
        let policy = entry("3513; 3256 16637 POLICY public messages messages are read by users postgres");
        assert_eq!((policy.kind.as_str(), policy.tag.as_str()), ("POLICY", "messages messages are read by users"));
        let acl = entry("3538; 0 0 ACL - SCHEMA public pg_database_owner");
        assert_eq!(acl.schema_named(), Some("public"));
        let extension = entry("2; 3079 16411 EXTENSION - pgcrypto ");
        assert_eq!(
            (extension.kind.as_str(), extension.tag.as_str(), extension.owner.as_str()),
            ("EXTENSION", "pgcrypto", "")
        );
        let function = entry("306; 1255 16640 FUNCTION public handle_new_user() postgres");
        assert_eq!(function.tag, "handle_new_user()");
        let fk = entry("3361; 2606 16615 FK CONSTRAINT public billing billing_user_id_fkey postgres");
        assert_eq!((fk.kind.as_str(), fk.tag.as_str()), ("FK CONSTRAINT", "billing billing_user_id_fkey"));
        assert!(TocEntry::parse(";     Dump Version: 1.14-0").is_none());
    }
}
