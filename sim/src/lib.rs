//! paydesk-sim: a local WeChat Pay v2 simulator (being written).
