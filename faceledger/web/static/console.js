// The console's only script: keyboard shortcuts on the review task page. Everything works
// without it (plain forms); it is served by this server, never fetched from elsewhere.
(function () {
  "use strict";
  const pairs = Array.from(document.querySelectorAll(".pair[data-decidable]"));
  if (!pairs.length) return;
  let current = 0;
  function show(index) {
    pairs.forEach((pair, i) => pair.classList.toggle("current", i === index));
    current = index;
    pairs[index].scrollIntoView({ block: "nearest" });
  }
  function choose(decision) {
    const pair = pairs[current];
    pair.querySelector("input[name=decision][value=" + decision + "]").checked = true;
    pair.querySelector("textarea[name=reason]").focus();
  }
  document.addEventListener("keydown", (event) => {
    const typing = /^(TEXTAREA|INPUT|SELECT)$/.test(event.target.tagName);
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "j") show(Math.min(pairs.length - 1, current + 1));
    else if (event.key === "k") show(Math.max(0, current - 1));
    else if (event.key === "c") choose("confirm");
    else if (event.key === "r") choose("reject");
    else return;
    event.preventDefault();
  });
  show(0);
})();
