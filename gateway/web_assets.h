/* The web page's stylesheet and script (web/), embedded at build time by scripts/embed-web.sh. */
#ifndef HEGN_WEB_ASSETS_H
#define HEGN_WEB_ASSETS_H

extern const char web_asset_css[];
extern const char web_asset_js[];

#endif
