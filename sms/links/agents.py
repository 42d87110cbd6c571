"""Who is asking for a short link: preview fetchers and link scanners (recorded as previews, never as
clicks), and the platform family of a phone.

Crawlers are recognised by crawlerdetect (a maintained port of the PHP Crawler-Detect list: messaging
apps' unfurlers — WhatsApp, Facebook, Telegram, Slack, Discord, Skype, LinkedIn, Twitter —, search and
safety bots, HTTP libraries). A few preview/scanner agents that list misses are added here. Results are
memoised per user agent (a bounded dict), so the redirect pays for a regex scan once per distinct agent.
"""
from __future__ import annotations

import re

from crawlerdetect import CrawlerDetect

_detector = CrawlerDetect()
# Not (or not reliably) in crawlerdetect's list: iMessage's preview fetcher (it poses as an old Safari plus
# Facebook/Twitter bot tokens, caught above), Google's and Microsoft's link scanners, mail security gateways.
_EXTRA = re.compile(
    r"(?i)(facebookexternalhit|facebot|twitterbot|whatsapp|telegrambot|slackbot|discordbot|skypeuripreview|"
    r"linkedinbot|embedly|iframely|google-safety|googleimageproxy|bingpreview|microsoft\s?preview|"
    r"proofpoint|mimecast|barracuda|symantec|trendmicro|urldefense|safelinks|zgrab|masscan|"
    r"headlesschrome|phantomjs|kakaotalk-scrap|yahoo.*slurp|pinterestbot|redditbot|"
    r"mastodon|bluesky|applebot|preview)")
_cache: dict[str, bool] = {}
_CACHE_MAX = 10_000


def is_preview_agent(user_agent: str) -> bool:
    """A link-preview fetcher, a scanner, a bot or a bare HTTP library (an empty agent included)."""
    if not user_agent:
        return True
    hit = _cache.get(user_agent)
    if hit is None:
        hit = bool(_EXTRA.search(user_agent)) or _detector.isCrawler(user_agent)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[user_agent] = hit
    return hit


_IOS = re.compile(r"iPhone|iPad|iPod|\bCPU OS \d")
_ANDROID = re.compile(r"Android")
_DESKTOP = re.compile(r"Windows NT|Macintosh|X11; |CrOS")


def platform_family(user_agent: str) -> str:
    """ios | android | desktop | other."""
    if _IOS.search(user_agent):
        return "ios"
    if _ANDROID.search(user_agent):
        return "android"
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "other"
