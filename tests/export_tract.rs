//! Both presets exported to ONNX and run on tract equal the candle forward within 1e-4; the live
//! preset's streaming export equals its windowed one.

mod common;

#[test]
fn exported_networks_run_on_tract_like_candle() {
    let name = common::export::exported_nets_match_candle(voxmask::model::BackendChoice::Tract);
    assert_eq!(name, "tract");
}

#[test]
fn streaming_export_equals_the_windowed_one() {
    common::export::streaming_export_matches_windowed(voxmask::model::BackendChoice::Tract);
}
