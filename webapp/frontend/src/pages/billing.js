// `/billing` in a desktop browser: the theme (light or dark, from the system) and the tier chip of
// a signed-in visitor; the page's forms work without script.
import { boot } from "../lib/boot.js";

boot({ inner: true });
