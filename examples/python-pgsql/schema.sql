CREATE TABLE IF NOT EXISTS coders (name text PRIMARY KEY, lang text NOT NULL);
INSERT INTO coders VALUES ('joris', 'c'), ('guido', 'python'), ('ada', 'analytical engine')
    ON CONFLICT (name) DO NOTHING;
