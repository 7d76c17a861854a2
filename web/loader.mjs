// trunk's initializer (web/index.html, data-initializer): the page shows the
// game's download, then its start, before the wasm can say anything itself.
// The bytes counted are the decoded body's; a compressed response's length
// is not, so no percentage is claimed: megabytes received, and a bar that
// moves without a total.
export default function loader() {
  const bar = document.getElementById("load-bar");
  const text = document.getElementById("load-text");
  const phase = (name, words) => {
    document.body.dataset.load = name;
    if (text) text.textContent = words;
  };
  return {
    onStart: () => phase("downloading", "Loading the game…"),
    onProgress: ({ current }) => {
      bar?.removeAttribute("value");
      phase("downloading", `Loading the game… ${(current / 1e6).toFixed(1)} MB`);
    },
    onComplete: () => {
      if (bar) bar.value = 1;
      phase("starting", "Starting…");
    },
    onSuccess: () => phase("ready", ""),
    onFailure: (error) => phase("failed", `The game could not load: ${error}`),
  };
}
