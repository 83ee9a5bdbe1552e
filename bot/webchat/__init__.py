"""The storefront web chat: an embeddable widget, a demo storefront page, history and uploads."""
