CREATE TABLE books (
    id BIGINT NOT NULL PRIMARY KEY,
    author_id BIGINT NOT NULL REFERENCES authors (id),
    title TEXT NOT NULL
);
CREATE INDEX books_author_id ON books (author_id);
