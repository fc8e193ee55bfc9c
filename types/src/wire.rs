//! Enums whose names are a wire contract: stored in the database, sent in live events and
//! server-function payloads, used in URLs. [`wire_enum!`] writes each name once and derives
//! from it `ALL`, `as_str`, `Display`, `FromStr`, `TryFrom<String>` and serde, so they cannot
//! disagree.

/// A string that is none of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// What was being read (`order status`, `verdict`, …).
    pub what: &'static str,
    /// The string as given.
    pub name: String,
}

/// Declares an enum with one wire name per variant:
///
/// ```text
/// wire_enum! {
///     /// Doc.
///     pub enum OrderStatus as "order status" {
///         /// Doc.
///         NotPay = "NOTPAY",
///     }
/// }
/// ```
///
/// `as "…"` names the enum in [`UnknownName`]'s message.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$variant),+];

            /// The stored (wire) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::wire::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::wire::UnknownName {
                        what: $what,
                        name: s.to_owned(),
                    }),
                }
            }
        }

        /// For `#[sqlx(try_from = "String")]`: a stored name read straight into the enum.
        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::wire::UnknownName;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <String as ::serde::Deserialize>::deserialize(d)?;
                name.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use wire_enum;
