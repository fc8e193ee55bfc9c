//! WeChat Pay API v2 protocol library (being written).
