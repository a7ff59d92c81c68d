//! The widget's call-quality warning on a network that really loses packets:
//! `offhook demo` and Debian's headless Chromium run in a network namespace of
//! their own whose loopback drops 12% of UDP (iptables), and a call to the echo
//! from the demo page must show "Poor network" with the loss Chromium measured
//! (WebRTC statistics), while on the clean loopback of the other tests it says
//! "good" (see `widget_embed`). Screenshot: `target/tmp/widget-poor-network.png`.

use offhook_directory::testing::Backend;
use offhook_tests::browser::{node_in, npm_ci};
use offhook_tests::netns::LossyNetwork;
use offhook_tests::{ANY_PORTS, Offhook, write_tone_wav};

#[tokio::test]
async fn a_lossy_network_shows_the_poor_network_warning() {
    npm_ci();
    let network = LossyNetwork::new("quality", 12);
    let offhook = Offhook::new(Backend::Sqlite).await;
    let mut demo = offhook.spawn_in(&network, &["demo"], ANY_PORTS);
    demo.wait_for_line("media relay at").await;
    let url = format!("http://{}/", demo.wait_for_web_address().await);
    let dir = env!("CARGO_TARGET_TMPDIR");
    let wav = std::path::Path::new(dir).join("quality-tone.wav");
    write_tone_wav(&wav, 1000.0, 60).unwrap();
    let screenshot = format!("{dir}/widget-poor-network.png");

    let report = node_in(
        &network,
        "quality.mjs",
        &[&url, wav.to_str().unwrap(), &screenshot],
    )
    .await;
    assert!(report["error"].is_null(), "{report}");
    let shown = &report["shown"];
    assert_eq!(shown["level"], "poor", "{report}");
    assert!(
        shown["poor"] == true && shown["text"].as_str().unwrap().contains("Poor network"),
        "{report}"
    );
    let samples = report["samples"].as_array().unwrap();
    let lossy = samples
        .iter()
        .filter(|s| s["lossPercent"].as_f64().unwrap_or(0.0) > 3.0)
        .count();
    assert!(lossy >= 2, "the loss was measured: {report}");
    let last = samples.last().unwrap();
    assert!(
        last["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "high-packet-loss"),
        "{report}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 5_000);
    assert!(demo.stop().await.success());
    offhook.db.finish().await;
}
