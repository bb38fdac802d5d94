-- The language a user reads messages in (`en`, `zh-Hans`, `zh-Hant`) and the phone number
-- (E.164) SMS messages go to.
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'en'
    CHECK (language IN ('en', 'zh-Hans', 'zh-Hant'));
ALTER TABLE users ADD COLUMN phone TEXT;
