"""Real user-agent strings, as browsers, crawlers and tools send them.

``BROWSERS``: (user agent, device type, browser, OS, browser version) after server-side
parsing. ``BOTS``: (user agent, drop reason).
"""

from __future__ import annotations

BROWSERS: list[tuple[str, str, str, str, str]] = [
    # -- desktop -----------------------------------------------------------------------
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop", "Chrome", "Windows", "124.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop", "Firefox", "Windows", "125.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        "desktop", "Edge", "Windows", "124.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
        "desktop", "Opera", "Windows", "109.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "desktop", "IE", "Windows", "11.0",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15",
        "desktop", "Safari", "macOS", "17.4",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop", "Chrome", "macOS", "124.0",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop", "Firefox", "macOS", "125.0",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop", "Firefox", "Linux", "125.0",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
        "desktop", "Firefox", "Ubuntu", "124.0",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop", "Chrome", "Linux", "124.0",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop", "Chrome", "ChromeOS", "124.0",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7.3329.17",
        "desktop", "Vivaldi", "Windows", "6.7",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
        "desktop", "Yandex Browser", "Windows", "24.4",
    ),
    # -- mobile ------------------------------------------------------------------------
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "mobile", "Chrome", "Android", "124.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        "mobile", "Chrome", "Android", "124.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "mobile", "Samsung Internet", "Android", "24.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36",
        "mobile", "Chrome WebView", "Android", "123.0",
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        "mobile", "Firefox", "Android", "125.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
        "mobile", "Edge", "Android", "124.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        "mobile", "Chrome", "Android", "120.0",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        "mobile", "Safari", "iOS", "17.4",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.71 Mobile/15E148 Safari/604.1",
        "mobile", "Chrome", "iOS", "124.0",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        "mobile", "Firefox", "iOS", "125.0",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/454.0.0.38.106;FBBV/580005451;"
        "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.3.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "mobile", "Facebook App", "iOS", "454.0",
    ),
    # -- tablet ------------------------------------------------------------------------
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        "tablet", "Safari", "iOS", "16.6",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/124.0.6367.71 Mobile/15E148 Safari/604.1",
        "tablet", "Chrome", "iOS", "124.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "tablet", "Chrome", "Android", "124.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
        "tablet", "Samsung Internet", "Android", "23.0",
    ),
    (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/118.4.1 like Chrome/118.0.5993.144 Safari/537.36",
        "tablet", "Silk", "Android", "118.4",
    ),
    (
        "Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
        "tablet", "Firefox", "Android", "125.0",
    ),
]  # fmt: skip

BOTS: list[tuple[str, str]] = [
    # -- search and AI crawlers, link previews -----------------------------------------
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        "crawler",
    ),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "crawler"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "crawler"),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "crawler",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "crawler",
    ),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "crawler"),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        "crawler",
    ),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "crawler"),
    ("Twitterbot/1.0", "crawler"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "crawler"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "crawler"),
    ("WhatsApp/2.23.20.0", "crawler"),
    ("Scrapy/2.11.1 (+https://scrapy.org)", "crawler"),
    # -- headless browsers and automation frameworks ----------------------------------
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.6367.60 Safari/537.36",
        "headless",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.71 Safari/537.36",
        "headless",
    ),
    (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
        "headless",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 "
        "Chrome/114.0.5735.289 Electron/25.8.4 Safari/537.36",
        "headless",
    ),
    # -- HTTP clients and scripts ------------------------------------------------------
    ("curl/8.4.0", "http_client"),
    ("Wget/1.21.4", "http_client"),
    ("python-requests/2.31.0", "http_client"),
    ("python-httpx/0.28.1", "http_client"),
    ("Python-urllib/3.11", "http_client"),
    ("Python/3.11 aiohttp/3.9.5", "http_client"),
    ("Go-http-client/1.1", "http_client"),
    ("okhttp/4.12.0", "http_client"),
    ("Java/17.0.2", "http_client"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.8)", "http_client"),
    ("axios/1.6.8", "http_client"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "http_client"),
    ("node", "http_client"),
    ("libwww-perl/6.72", "http_client"),
    ("PostmanRuntime/7.37.3", "http_client"),
    # -- monitors and performance tools ------------------------------------------------
    (
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "monitor",
    ),
    ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "monitor"),
    ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "monitor"),
    # -- nothing at all ----------------------------------------------------------------
    ("", "no_user_agent"),
    ("   ", "no_user_agent"),
]
