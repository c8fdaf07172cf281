// The page's translated texts: the server renders them from the bot's gettext catalogs into
// a JSON data block (`<script type="application/json" id="texts">`), never executed.
let cache = null;

export function t(key, values) {
  if (cache === null) {
    const node = document.getElementById("texts");
    cache = node ? JSON.parse(node.textContent) : {};
  }
  let text = cache[key] || key;
  if (values) {
    for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}
