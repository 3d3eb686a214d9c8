// The page's own behaviour (loaded in <head>; every listener is delegated, so Gradio's re-renders keep it):
// 1. upload state: choosing or dropping a photo clears the old answer at once and disables "Identify"
//    until the upload has ended (the Python chain enables it again);
// 2. large photos are shrunk in the browser (longest side MAX_SIDE px) before they are uploaded;
// 3. the uploaded photo's preview gets alt text;
// 4. after an answer given with the keyboard, focus stays in "Narrow it down" (the next question's first
//    button), and the "This answer is wrong?" fold hides while a new photo uploads;
// 5. the lightbox: reference photos enlarge on click, tap, Enter or Space; Esc, the close button or a
//    click outside closes it; the arrow keys step through the photos of the same answer.
(() => {
  const MAX_SIDE = 1600;
  const SHRUNK = "midShrunk";
  const UPLOADING = "Uploading your photo…";

  const clearAnswer = () => {
    const panel = document.querySelector("#answer-panel #answer");
    if (panel) {
      panel.dataset.state = "uploading";
      panel.innerHTML = '<div class="uploading">' + UPLOADING + "</div>";
    }
    for (const id of ["#narrow-panel", "#more-panel"]) {
      const el = document.querySelector(id);
      if (el) el.querySelectorAll("#narrow, #more").forEach((n) => n.remove());
    }
    const flag = document.querySelector("#flag-panel");
    if (flag) flag.dataset.midHidden = "true"; // about the old answer: hidden until the new one is in
    const identify = document.querySelector("#identify");
    if (identify) {
      identify.disabled = true;
      identify.dataset.uploading = "true";
      clearTimeout(window.__midEnable);
      window.__midEnable = setTimeout(enableIdentify, 120000); // never stuck if an upload fails
    }
  };
  const enableIdentify = () => {
    const identify = document.querySelector("#identify");
    if (identify && identify.dataset.uploading) {
      identify.disabled = false;
      delete identify.dataset.uploading;
    }
  };
  window.midEnableIdentify = enableIdentify;

  const shrink = async (file) => {
    if (!file || !/^image\/(jpeg|png|webp)$/.test(file.type) || !window.createImageBitmap) return file;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      return file; // not decodable here: let the server say what is wrong
    }
    const scale = MAX_SIDE / Math.max(bitmap.width, bitmap.height);
    if (scale >= 1) return file;
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.9));
    if (!blob) return file;
    const name = file.name.replace(/\.[^.]+$/, "") + ".jpg";
    return new File([blob], name, { type: "image/jpeg", lastModified: file.lastModified });
  };

  const handOver = async (input, files) => {
    const shrunk = await Promise.all([...files].map(shrink));
    const dt = new DataTransfer();
    shrunk.forEach((f) => dt.items.add(f));
    input.files = dt.files;
    input.dataset[SHRUNK] = "true";
    input.dispatchEvent(new Event("change", { bubbles: true }));
  };

  document.addEventListener(
    "change",
    (event) => {
      const input = event.target;
      if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#photo")) return;
      if (input.dataset[SHRUNK]) {
        delete input.dataset[SHRUNK];
        return; // our own hand-over: let Gradio upload it
      }
      if (!input.files || !input.files.length) return;
      event.stopImmediatePropagation();
      clearAnswer();
      handOver(input, input.files);
    },
    true,
  );

  document.addEventListener(
    "drop",
    (event) => {
      const zone = event.target instanceof Element && event.target.closest("#photo");
      const files = event.dataTransfer && event.dataTransfer.files;
      const input = zone && zone.querySelector("input[type=file]");
      if (!input || !files || !files.length) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      clearAnswer();
      handOver(input, [files[0]]);
    },
    true,
  );

  // The photo input's preview has no alt text of its own: give it one.
  const altText = () => {
    document.querySelectorAll("#photo img:not([alt]), #photo img[alt='']").forEach((img) => {
      img.alt = "Your photo of the mushroom";
    });
  };
  const afterRender = () => {
    const flag = document.querySelector("#flag-panel[data-mid-hidden]");
    if (flag && document.querySelector('#answer[data-state="answer"]')) delete flag.dataset.midHidden;
    if (!window.__midNarrowKeyboard) return;
    const narrow = document.querySelector("#narrow");
    if (!narrow || narrow.contains(document.activeElement)) return;
    const next = narrow.querySelector("button.option") || narrow.querySelector("button.chip");
    if (next) {
      window.__midNarrowKeyboard = false;
      next.focus();
    }
  };
  new MutationObserver(() => {
    altText();
    afterRender();
  }).observe(document.documentElement, { childList: true, subtree: true });

  // ------------------------------------------------------------ lightbox
  let dialog = null;
  let current = null;
  const zooms = () => [...document.querySelectorAll("button.zoom")].filter((b) => b.offsetParent !== null);
  const show = (button) => {
    current = button;
    dialog.querySelector("img").src = button.dataset.full;
    dialog.querySelector("img").alt = button.querySelector("img") ? button.querySelector("img").alt : "";
    dialog.querySelector("p").textContent = button.dataset.caption || "";
  };
  const open = (button) => {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "lightbox";
      dialog.setAttribute("aria-label", "Enlarged photo");
      dialog.innerHTML = '<img alt=""><p></p><button type="button" aria-label="Close">✕</button>';
      dialog.querySelector("button").addEventListener("click", () => dialog.close());
      dialog.addEventListener("click", (e) => {
        if (e.target === dialog) dialog.close();
      });
      dialog.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
        const all = zooms();
        const i = all.indexOf(current);
        if (i < 0 || !all.length) return;
        show(all[(i + (e.key === "ArrowRight" ? 1 : all.length - 1)) % all.length]);
        e.preventDefault();
      });
      dialog.addEventListener("close", () => current && current.focus());
      document.body.appendChild(dialog);
    }
    show(button);
    dialog.showModal();
    dialog.querySelector("button").focus();
  };
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("button.zoom");
    if (button) {
      event.preventDefault();
      open(button);
    }
  });
})();
