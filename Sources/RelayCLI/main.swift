print("klaviyo-relay")
