// A page with no controls of its own (/billing, an unknown symbol): the theme (Telegram's, or
// the system's light or dark), Telegram's set-up with the BackButton, the tier chip. Its links
// and forms work without script.
import { boot } from "../lib/boot.js";

boot({ inner: true });
