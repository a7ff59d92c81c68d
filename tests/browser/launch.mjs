// Starts Debian's headless Chromium the way every browser test here needs it: no
// sandbox (root in CI), no background networking (the machine has no internet),
// and, for calls, a fake microphone playing a WAV file and loopback ICE candidates.
import { chromium } from "playwright-core";

const BASE_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/// Chromium; with `wav`, its fake microphone plays that file.
export function launch(wav, extraArgs = []) {
  const media = wav
    ? ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        `--use-file-for-fake-audio-capture=${wav}`, "--allow-loopback-in-peer-connection"]
    : [];
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: [...BASE_ARGS, ...media, ...extraArgs] });
}
