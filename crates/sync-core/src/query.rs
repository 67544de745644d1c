//! Queries over the entries of one document.

use bytes::Bytes;

use crate::keys::AuthorId;

/// Which authors a query matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthorFilter {
    /// Every author.
    #[default]
    Any,
    /// One author.
    Exact(AuthorId),
}

impl AuthorFilter {
    /// Whether `author` passes.
    pub fn matches(&self, author: &AuthorId) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(a) => a == author,
        }
    }
}

/// Which keys a query matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeyFilter {
    /// Every key.
    #[default]
    Any,
    /// Exactly this key.
    Exact(Bytes),
    /// Every key that starts with these bytes.
    Prefix(Bytes),
}

impl KeyFilter {
    /// Whether `key` passes.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(k) => k.as_ref() == key,
            Self::Prefix(p) => key.starts_with(p),
        }
    }
}

/// The order of a flat query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// By key, then author.
    KeyAuthor,
    /// By author, then key (the default, as in iroh-docs).
    #[default]
    AuthorKey,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// What a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Every matching entry, in the given order.
    Flat(SortBy),
    /// For each key, the newest matching entry (by timestamp; a tie keeps the entry of the
    /// smallest author id), in key order. The author filter applies before the choice, the
    /// deletion-marker filter after it: a key whose newest entry is a deletion marker is
    /// omitted unless `include_empty`.
    LatestPerKey,
}

/// A query over the entries of one document. Build one with [`Query::all`],
/// [`Query::latest_per_key`], [`Query::author`], [`Query::key_exact`] or [`Query::key_prefix`],
/// then refine it with the chained methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// What is returned.
    pub kind: QueryKind,
    /// The author filter.
    pub author: AuthorFilter,
    /// The key filter.
    pub key: KeyFilter,
    /// At most this many results.
    pub limit: Option<u64>,
    /// Skip this many matching results first.
    pub offset: u64,
    /// Whether deletion markers are returned.
    pub include_empty: bool,
    /// The direction of the order.
    pub direction: SortDirection,
}

impl Query {
    /// Every entry, sorted by author then key.
    pub fn all() -> Self {
        Self {
            kind: QueryKind::Flat(SortBy::default()),
            author: AuthorFilter::Any,
            key: KeyFilter::Any,
            limit: None,
            offset: 0,
            include_empty: false,
            direction: SortDirection::Asc,
        }
    }

    /// The newest entry per key.
    pub fn latest_per_key() -> Self {
        Self {
            kind: QueryKind::LatestPerKey,
            ..Self::all()
        }
    }

    /// Every entry of one author.
    pub fn author(author: AuthorId) -> Self {
        Self::all().with_author(author)
    }

    /// Every entry at exactly this key.
    pub fn key_exact(key: impl Into<Bytes>) -> Self {
        Self::all().with_key_exact(key)
    }

    /// Every entry whose key starts with `prefix`.
    pub fn key_prefix(prefix: impl Into<Bytes>) -> Self {
        Self::all().with_key_prefix(prefix)
    }

    /// Restricts to one author.
    pub fn with_author(mut self, author: AuthorId) -> Self {
        self.author = AuthorFilter::Exact(author);
        self
    }

    /// Restricts to one key.
    pub fn with_key_exact(mut self, key: impl Into<Bytes>) -> Self {
        self.key = KeyFilter::Exact(key.into());
        self
    }

    /// Restricts to keys with this prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<Bytes>) -> Self {
        self.key = KeyFilter::Prefix(prefix.into());
        self
    }

    /// Returns at most `limit` results.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skips the first `offset` results.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Also returns deletion markers.
    pub fn with_include_empty(mut self, include_empty: bool) -> Self {
        self.include_empty = include_empty;
        self
    }

    /// Sets the order of a flat query (ignored by [`QueryKind::LatestPerKey`], which is always
    /// in key order) and the direction.
    pub fn with_sort(mut self, sort_by: SortBy, direction: SortDirection) -> Self {
        if let QueryKind::Flat(_) = self.kind {
            self.kind = QueryKind::Flat(sort_by);
        }
        self.direction = direction;
        self
    }

    /// Sets the direction.
    pub fn with_direction(mut self, direction: SortDirection) -> Self {
        self.direction = direction;
        self
    }
}

/// Where a paged query stopped; pass it back to continue. A fresh query starts from
/// [`QueryCursor::start`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryCursor {
    /// The sort position of the last result returned, if any.
    pub after: Option<(Bytes, AuthorId)>,
    /// Matching results still to skip (the query's offset, counted down).
    pub to_skip: u64,
    /// Results still allowed (the query's limit, counted down); `None` for no limit.
    pub remaining: Option<u64>,
    /// Whether the query has been exhausted.
    pub done: bool,
}

impl QueryCursor {
    /// The cursor at the start of `query`.
    pub fn start(query: &Query) -> Self {
        Self {
            after: None,
            to_skip: query.offset,
            remaining: query.limit,
            done: query.limit == Some(0),
        }
    }
}
