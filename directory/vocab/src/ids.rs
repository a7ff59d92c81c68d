//! Ids as newtypes: the directory's generated ids (`lin_…`, `cdr_…`), node and
//! relay names. Each wraps its text; `as_str` and `Display` give it back.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id's text.
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(text.to_owned())
            }
        }
    };
}

text_id!(
    /// A tenant (`ten_…`).
    TenantId
);
text_id!(
    /// An icon (`icn_…`; its public id is another text).
    IconId
);
text_id!(
    /// An account (`acc_…`).
    AccountId
);
text_id!(
    /// A line (`lin_…`).
    LineId
);
text_id!(
    /// A call detail record (`cdr_…`).
    CdrId
);
text_id!(
    /// A process that owns calls or lines: a signaling node or a media relay,
    /// one incarnation (a restart is a new owner).
    OwnerId
);
