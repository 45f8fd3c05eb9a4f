print("klaviyo-sim")
