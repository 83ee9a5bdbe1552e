"""xiaobao: a consumer-rights customer-service assistant built on Rasa."""
