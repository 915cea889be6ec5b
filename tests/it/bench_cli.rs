//! `phototag bench --dir --json` reports end-to-end and inference-only rates, their ratio
//! and peak RSS for a folder (figures are not asserted, only their consistency).

use crate::common;

use std::process::Command;

#[test]
fn bench_json_reports_consistent_figures_for_a_folder() {
    let store = common::random_model_store(21);
    let dir = common::fixture("photos");
    let out = Command::new(common::bin())
        .args(["-q", "--model-dir"])
        .arg(store.dir())
        .args(["bench", "--model", "resnet18-random", "--iterations", "1"])
        .args(["--batch-sizes", "2", "--batch-size", "2", "--json", "--dir"])
        .arg(&dir)
        .env("PHOTOTAG_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "resnet18-random");
    assert_eq!(v["batch_size"], 2);
    assert_eq!(v["optimized"], phototag_engine::model::optimized::AVAILABLE);
    let f = &v["folder"];
    let files = std::fs::read_dir(&dir).unwrap().count() as u64;
    assert_eq!(f["files"].as_u64().unwrap(), files);
    let classified = f["classified"].as_u64().unwrap();
    assert!(classified > 0, "{f}");
    assert_eq!(classified + f["refused"].as_u64().unwrap(), files);
    let e2e = f["end_to_end_images_per_second"].as_f64().unwrap();
    let inf = f["inference_only_images_per_second"].as_f64().unwrap();
    assert!(e2e > 0.0 && inf > 0.0, "{f}");
    let ratio = f["ratio"].as_f64().unwrap();
    assert!((ratio - e2e / inf).abs() < 1e-9, "{f}");
    let peak = v["peak_rss_mib"].as_f64().unwrap();
    assert!(peak >= v["rss_loaded_mib"].as_f64().unwrap(), "{v}");
    assert!(
        peak >= f["end_to_end_peak_rss_mib"].as_f64().unwrap(),
        "{v}"
    );
}
