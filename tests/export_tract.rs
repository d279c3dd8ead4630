//! Both presets exported to ONNX and run on tract equal the candle forward within 1e-4.

mod common;

#[test]
fn exported_networks_run_on_tract_like_candle() {
    let name = common::export::exported_nets_match_candle(voxmask::model::BackendChoice::Tract);
    assert_eq!(name, "tract");
}
