// `/record`: the public track record, rendered by the server (GET /api/record's figures);
// the module only sets the page up inside Telegram (theme, back button, tier chip).
import { boot } from "../lib/boot.js";

boot({ inner: true });
