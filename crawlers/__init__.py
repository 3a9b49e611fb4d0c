"""Collection layer: sources produce `RawItem`s, stored as raw posts; normalize and dedup are pure stages."""
