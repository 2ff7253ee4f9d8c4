/*  aigw_verify: the word-level check before a semantic hit (see the header
    for what passes and what fails). Both prompts become lists of terms:
    each word's canonical form (number words as digits, synonyms and
    spellings as one form, units by their symbol) and its role. The check
    then compares the terms whose roles must match exactly, pairs the
    remaining differences as synonyms or typos, and finally compares the
    order of what is left. Every loop is bounded by AIGW_VERIFY_WORDS_MAX. */
#include "aigw_verify.h"
#include "aigw_words.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Roles a lexicon entry gives a word (bits).
#define S_IGNORE  0x001  //  politeness, articles, auxiliaries: dropped
#define S_NEG     0x002  //  negation
#define S_NUMBER  0x004  //  a number word (value in the entry)
#define S_UNIT    0x008  //  a unit or currency
#define S_ANTONYM 0x010  //  one side of an antonym pair
#define S_FORMAT  0x020  //  format, language or audience
#define S_FILLER  0x040  //  may be added or left out
#define S_PREP    0x080  //  leads a phrase that may move with it
#define S_ORDINAL 0x100  //  first, third...: a number (value in the entry)
//  Roles a term gets from its prompt.
#define S_ENTITY 0x1000  //  capitalized inside a sentence, all capitals
#define S_DIGITS 0x2000  //  digits
#define S_SYMBOL 0x4000  //  an operator or symbol
//  Roles whose words must match exactly.
#define S_STRICT \
    (S_NEG | S_NUMBER | S_UNIT | S_ANTONYM | S_FORMAT | S_ORDINAL | S_ENTITY | S_DIGITS | S_SYMBOL)

//  One lexicon entry.
typedef struct {
    const char *word;   //  as the tokenizer gives it
    const char *canon;  //  canonical form, NULL for the word itself
    unsigned roles;     //  S_* bits
    double value;       //  number words: their value
} s_lex_t;

//  The table names only the fields an entry needs; the rest are zero.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
static const s_lex_t s_lexicon[] = {
    //  Politeness, articles, auxiliaries that do not change an answer.
    {"a"}, {"an"}, {"the"}, {"please"}, {"pls"}, {"plz"}, {"kindly"}, {"thanks"},
    {"thank"}, {"thx"}, {"hi"}, {"hello"}, {"hey"}, {"could"}, {"would"}, {"can"},
    {"will"}, {"you"}, {"me"}, {"i"}, {"my"}, {"do"}, {"does"}, {"am"}, {"so"},
    {"dear"}, {"assistant"}, {"u"},
    //  The verb be: number agreement only.
    {"are", "is"}, {"were", "was"},
    //  Fillers that may come and go.
    {"just", NULL, S_FILLER}, {"really", NULL, S_FILLER}, {"actually", NULL, S_FILLER},
    {"basically", NULL, S_FILLER}, {"simply", NULL, S_FILLER}, {"also", NULL, S_FILLER},
    {"quickly", NULL, S_FILLER}, {"exactly", NULL, S_FILLER}, {"tell", NULL, S_FILLER},
    {"help", NULL, S_FILLER}, {"want", NULL, S_FILLER}, {"know", NULL, S_FILLER},
    {"need", NULL, S_FILLER}, {"like", NULL, S_FILLER}, {"wondering", NULL, S_FILLER},
    {"possible", NULL, S_FILLER}, {"if", NULL, S_FILLER}, {"way", NULL, S_FILLER},
    {"whether", "if", S_FILLER},
    //  Negation.
    {"not", NULL, S_NEG}, {"no", NULL, S_NEG}, {"never", NULL, S_NEG},
    {"without", NULL, S_NEG | S_PREP}, {"none", NULL, S_NEG}, {"nothing", NULL, S_NEG},
    {"nobody", NULL, S_NEG}, {"neither", NULL, S_NEG}, {"nor", NULL, S_NEG},
    {"cannot", NULL, S_NEG}, {"nowhere", NULL, S_NEG}, {"t", "not", S_NEG},
    //  Number words.
    {"zero", "0", S_NUMBER, 0}, {"one", "1", S_NUMBER, 1}, {"two", "2", S_NUMBER, 2},
    {"three", "3", S_NUMBER, 3}, {"four", "4", S_NUMBER, 4}, {"five", "5", S_NUMBER, 5},
    {"six", "6", S_NUMBER, 6}, {"seven", "7", S_NUMBER, 7}, {"eight", "8", S_NUMBER, 8},
    {"nine", "9", S_NUMBER, 9}, {"ten", "10", S_NUMBER, 10}, {"eleven", "11", S_NUMBER, 11},
    {"twelve", "12", S_NUMBER, 12}, {"thirteen", "13", S_NUMBER, 13},
    {"fourteen", "14", S_NUMBER, 14}, {"fifteen", "15", S_NUMBER, 15},
    {"sixteen", "16", S_NUMBER, 16}, {"seventeen", "17", S_NUMBER, 17},
    {"eighteen", "18", S_NUMBER, 18}, {"nineteen", "19", S_NUMBER, 19},
    {"twenty", "20", S_NUMBER, 20}, {"thirty", "30", S_NUMBER, 30},
    {"forty", "40", S_NUMBER, 40}, {"fifty", "50", S_NUMBER, 50}, {"sixty", "60", S_NUMBER, 60},
    {"seventy", "70", S_NUMBER, 70}, {"eighty", "80", S_NUMBER, 80},
    {"ninety", "90", S_NUMBER, 90}, {"hundred", "100", S_NUMBER, 100},
    {"thousand", "1000", S_NUMBER, 1000}, {"million", "1000000", S_NUMBER, 1e6},
    {"billion", "1000000000", S_NUMBER, 1e9}, {"dozen", "12", S_NUMBER, 12},
    {"half", "0.5", S_NUMBER, 0.5}, {"twice", "2x", S_NUMBER, 0},
    {"first", "1st", S_ORDINAL | S_ANTONYM}, {"third", "3rd", S_ORDINAL},
    {"fourth", "4th", S_ORDINAL}, {"fifth", "5th", S_ORDINAL}, {"tenth", "10th", S_ORDINAL},
    {"last", NULL, S_ORDINAL | S_ANTONYM}, {"single", "1", S_NUMBER, 1},
    {"couple", NULL, S_NUMBER}, {"few", NULL, S_NUMBER}, {"several", NULL, S_NUMBER},
    {"many", NULL, S_NUMBER}, {"all", NULL, S_NUMBER}, {"every", NULL, S_NUMBER},
    {"each", NULL, S_NUMBER}, {"some", NULL, S_NUMBER}, {"any", NULL, S_NUMBER},
    //  Units and currencies, by one symbol each.
    {"km", NULL, S_UNIT}, {"kilometer", "km", S_UNIT}, {"kilometers", "km", S_UNIT},
    {"kilometre", "km", S_UNIT}, {"kilometres", "km", S_UNIT}, {"mile", "mi", S_UNIT},
    {"miles", "mi", S_UNIT}, {"mi", NULL, S_UNIT}, {"meter", "m", S_UNIT},
    {"meters", "m", S_UNIT}, {"metre", "m", S_UNIT}, {"metres", "m", S_UNIT},
    {"cm", NULL, S_UNIT}, {"centimeter", "cm", S_UNIT}, {"centimeters", "cm", S_UNIT},
    {"mm", NULL, S_UNIT}, {"millimeter", "mm", S_UNIT}, {"millimeters", "mm", S_UNIT},
    {"inch", "in", S_UNIT}, {"inches", "in", S_UNIT}, {"foot", "ft", S_UNIT},
    {"feet", "ft", S_UNIT}, {"ft", NULL, S_UNIT}, {"yard", "yd", S_UNIT},
    {"yards", "yd", S_UNIT}, {"kg", NULL, S_UNIT}, {"kilogram", "kg", S_UNIT},
    {"kilograms", "kg", S_UNIT}, {"kilo", "kg", S_UNIT}, {"kilos", "kg", S_UNIT},
    {"g", NULL, S_UNIT}, {"gram", "g", S_UNIT}, {"grams", "g", S_UNIT},
    {"lb", NULL, S_UNIT}, {"lbs", "lb", S_UNIT}, {"pound", "lb", S_UNIT},
    {"pounds", "lb", S_UNIT}, {"oz", NULL, S_UNIT}, {"ounce", "oz", S_UNIT},
    {"ounces", "oz", S_UNIT}, {"liter", "l", S_UNIT}, {"liters", "l", S_UNIT},
    {"litre", "l", S_UNIT}, {"litres", "l", S_UNIT}, {"ml", NULL, S_UNIT},
    {"gallon", "gal", S_UNIT}, {"gallons", "gal", S_UNIT}, {"celsius", "degc", S_UNIT},
    {"centigrade", "degc", S_UNIT}, {"fahrenheit", "degf", S_UNIT},
    {"kelvin", "degk", S_UNIT}, {"degrees", "deg", S_UNIT}, {"degree", "deg", S_UNIT},
    {"usd", NULL, S_UNIT}, {"dollar", "usd", S_UNIT}, {"dollars", "usd", S_UNIT},
    {"$", "usd", S_UNIT}, {"eur", NULL, S_UNIT}, {"euro", "eur", S_UNIT},
    {"euros", "eur", S_UNIT}, {"\xe2\x82\xac", "eur", S_UNIT}, {"gbp", NULL, S_UNIT},
    {"sterling", "gbp", S_UNIT}, {"\xc2\xa3", "gbp", S_UNIT}, {"jpy", NULL, S_UNIT},
    {"yen", "jpy", S_UNIT}, {"\xc2\xa5", "jpy", S_UNIT}, {"percent", "%", S_UNIT},
    {"%", NULL, S_UNIT}, {"second", "sec", S_UNIT}, {"seconds", "sec", S_UNIT},
    {"sec", NULL, S_UNIT}, {"minute", "min", S_UNIT}, {"minutes", "min", S_UNIT},
    {"hour", "hr", S_UNIT}, {"hours", "hr", S_UNIT}, {"hr", NULL, S_UNIT},
    {"day", NULL, S_UNIT}, {"days", "day", S_UNIT}, {"week", NULL, S_UNIT},
    {"weeks", "week", S_UNIT}, {"month", NULL, S_UNIT}, {"months", "month", S_UNIT},
    {"year", NULL, S_UNIT}, {"years", "year", S_UNIT}, {"gb", NULL, S_UNIT},
    {"gigabyte", "gb", S_UNIT}, {"gigabytes", "gb", S_UNIT}, {"mb", NULL, S_UNIT},
    {"megabyte", "mb", S_UNIT}, {"megabytes", "mb", S_UNIT}, {"kb", NULL, S_UNIT},
    {"tb", NULL, S_UNIT}, {"mph", NULL, S_UNIT}, {"kph", NULL, S_UNIT},
    {"bytes", "byte", S_UNIT}, {"byte", NULL, S_UNIT}, {"bits", "bit", S_UNIT},
    {"bit", NULL, S_UNIT},
    //  Antonym pairs: either side is strict; the pair is named in the verdict.
    {"on", NULL, S_ANTONYM | S_PREP}, {"off", NULL, S_ANTONYM}, {"up", NULL, S_ANTONYM},
    {"down", NULL, S_ANTONYM}, {"increase", NULL, S_ANTONYM}, {"decrease", NULL, S_ANTONYM},
    {"raise", "increase", S_ANTONYM}, {"lower", NULL, S_ANTONYM},
    {"reduce", "decrease", S_ANTONYM}, {"enable", NULL, S_ANTONYM},
    {"disable", NULL, S_ANTONYM}, {"activate", "enable", S_ANTONYM},
    {"deactivate", "disable", S_ANTONYM}, {"before", NULL, S_ANTONYM | S_PREP},
    {"after", NULL, S_ANTONYM | S_PREP}, {"buy", NULL, S_ANTONYM},
    {"purchase", "buy", S_ANTONYM}, {"sell", NULL, S_ANTONYM}, {"max", NULL, S_ANTONYM},
    {"maximum", "max", S_ANTONYM}, {"min", NULL, S_ANTONYM}, {"minimum", "min", S_ANTONYM},
    {"open", NULL, S_ANTONYM}, {"close", NULL, S_ANTONYM}, {"start", NULL, S_ANTONYM},
    {"begin", "start", S_ANTONYM}, {"stop", NULL, S_ANTONYM}, {"add", NULL, S_ANTONYM},
    {"remove", NULL, S_ANTONYM}, {"delete", "remove", S_ANTONYM},
    {"erase", "remove", S_ANTONYM}, {"include", NULL, S_ANTONYM},
    {"exclude", NULL, S_ANTONYM}, {"accept", NULL, S_ANTONYM}, {"reject", NULL, S_ANTONYM},
    {"allow", NULL, S_ANTONYM}, {"deny", NULL, S_ANTONYM}, {"block", NULL, S_ANTONYM},
    {"encrypt", NULL, S_ANTONYM}, {"decrypt", NULL, S_ANTONYM},
    {"compress", NULL, S_ANTONYM}, {"decompress", NULL, S_ANTONYM},
    {"encode", NULL, S_ANTONYM}, {"decode", NULL, S_ANTONYM}, {"upload", NULL, S_ANTONYM},
    {"download", NULL, S_ANTONYM}, {"import", NULL, S_ANTONYM}, {"export", NULL, S_ANTONYM},
    {"push", NULL, S_ANTONYM}, {"pull", NULL, S_ANTONYM}, {"more", NULL, S_ANTONYM},
    {"less", NULL, S_ANTONYM}, {"fewer", "less", S_ANTONYM}, {"most", NULL, S_ANTONYM},
    {"least", NULL, S_ANTONYM}, {"higher", NULL, S_ANTONYM}, {"high", NULL, S_ANTONYM},
    {"low", NULL, S_ANTONYM}, {"highest", NULL, S_ANTONYM}, {"lowest", NULL, S_ANTONYM},
    {"bigger", NULL, S_ANTONYM}, {"larger", "bigger", S_ANTONYM},
    {"smaller", NULL, S_ANTONYM}, {"biggest", NULL, S_ANTONYM},
    {"largest", "biggest", S_ANTONYM}, {"smallest", NULL, S_ANTONYM},
    {"big", NULL, S_ANTONYM}, {"large", "big", S_ANTONYM}, {"small", NULL, S_ANTONYM},
    {"little", "small", S_ANTONYM}, {"faster", NULL, S_ANTONYM},
    {"slower", NULL, S_ANTONYM}, {"fastest", NULL, S_ANTONYM}, {"slowest", NULL, S_ANTONYM},
    {"fast", NULL, S_ANTONYM}, {"quick", "fast", S_ANTONYM}, {"slow", NULL, S_ANTONYM},
    {"hot", NULL, S_ANTONYM}, {"cold", NULL, S_ANTONYM}, {"warm", NULL, S_ANTONYM},
    {"cool", NULL, S_ANTONYM}, {"true", NULL, S_ANTONYM}, {"false", NULL, S_ANTONYM},
    {"yes", NULL, S_ANTONYM}, {"win", NULL, S_ANTONYM}, {"lose", NULL, S_ANTONYM},
    {"ascending", NULL, S_ANTONYM}, {"descending", NULL, S_ANTONYM},
    {"asc", "ascending", S_ANTONYM}, {"desc", "descending", S_ANTONYM},
    {"above", NULL, S_ANTONYM | S_PREP}, {"below", NULL, S_ANTONYM | S_PREP},
    {"over", NULL, S_ANTONYM | S_PREP}, {"under", NULL, S_ANTONYM | S_PREP},
    {"inside", NULL, S_ANTONYM | S_PREP}, {"outside", NULL, S_ANTONYM | S_PREP},
    {"in", NULL, S_PREP}, {"out", NULL, S_ANTONYM}, {"into", NULL, S_PREP},
    {"positive", NULL, S_ANTONYM}, {"negative", NULL, S_ANTONYM},
    {"left", NULL, S_ANTONYM}, {"right", NULL, S_ANTONYM}, {"north", NULL, S_ANTONYM},
    {"south", NULL, S_ANTONYM}, {"east", NULL, S_ANTONYM}, {"west", NULL, S_ANTONYM},
    {"early", NULL, S_ANTONYM}, {"late", NULL, S_ANTONYM}, {"earlier", NULL, S_ANTONYM},
    {"later", NULL, S_ANTONYM}, {"old", NULL, S_ANTONYM}, {"new", NULL, S_ANTONYM},
    {"oldest", NULL, S_ANTONYM}, {"newest", NULL, S_ANTONYM}, {"latest", "newest", S_ANTONYM},
    {"young", NULL, S_ANTONYM}, {"cheap", NULL, S_ANTONYM}, {"expensive", NULL, S_ANTONYM},
    {"cheapest", NULL, S_ANTONYM}, {"long", NULL, S_ANTONYM}, {"short", NULL, S_ANTONYM},
    {"longest", NULL, S_ANTONYM}, {"shortest", NULL, S_ANTONYM},
    {"best", NULL, S_ANTONYM}, {"worst", NULL, S_ANTONYM}, {"better", NULL, S_ANTONYM},
    {"worse", NULL, S_ANTONYM}, {"good", NULL, S_ANTONYM}, {"bad", NULL, S_ANTONYM},
    {"lock", NULL, S_ANTONYM}, {"unlock", NULL, S_ANTONYM}, {"install", NULL, S_ANTONYM},
    {"uninstall", NULL, S_ANTONYM}, {"connect", NULL, S_ANTONYM},
    {"disconnect", NULL, S_ANTONYM}, {"subscribe", NULL, S_ANTONYM},
    {"unsubscribe", NULL, S_ANTONYM}, {"show", NULL, S_ANTONYM},
    {"display", "show", S_ANTONYM}, {"hide", NULL, S_ANTONYM}, {"public", NULL, S_ANTONYM},
    {"private", NULL, S_ANTONYM}, {"input", NULL, S_ANTONYM}, {"output", NULL, S_ANTONYM},
    {"send", NULL, S_ANTONYM}, {"receive", NULL, S_ANTONYM}, {"give", NULL, S_ANTONYM},
    {"take", NULL, S_ANTONYM}, {"plus", NULL, S_ANTONYM}, {"minus", NULL, S_ANTONYM},
    {"subtract", NULL, S_ANTONYM}, {"multiply", NULL, S_ANTONYM},
    {"divide", NULL, S_ANTONYM}, {"to", NULL, S_ANTONYM | S_PREP},
    {"from", NULL, S_ANTONYM | S_PREP}, {"male", NULL, S_ANTONYM},
    {"female", NULL, S_ANTONYM}, {"men", NULL, S_ANTONYM}, {"women", NULL, S_ANTONYM},
    {"love", NULL, S_ANTONYM}, {"hate", NULL, S_ANTONYM}, {"agree", NULL, S_ANTONYM},
    {"disagree", NULL, S_ANTONYM}, {"pros", "advantages", S_ANTONYM},
    {"cons", "disadvantages", S_ANTONYM}, {"advantages", NULL, S_ANTONYM},
    {"benefits", "advantages", S_ANTONYM}, {"disadvantages", NULL, S_ANTONYM},
    {"drawbacks", "disadvantages", S_ANTONYM}, {"risks", NULL, S_ANTONYM},
    {"legal", NULL, S_ANTONYM}, {"illegal", NULL, S_ANTONYM}, {"safe", NULL, S_ANTONYM},
    {"unsafe", NULL, S_ANTONYM}, {"dangerous", NULL, S_ANTONYM},
    {"valid", NULL, S_ANTONYM}, {"invalid", NULL, S_ANTONYM}, {"light", NULL, S_ANTONYM},
    {"dark", NULL, S_ANTONYM}, {"heavy", NULL, S_ANTONYM}, {"full", NULL, S_ANTONYM},
    {"empty", NULL, S_ANTONYM}, {"easy", NULL, S_ANTONYM}, {"hard", NULL, S_ANTONYM},
    {"difficult", "hard", S_ANTONYM}, {"simple", NULL, S_ANTONYM},
    {"complex", NULL, S_ANTONYM}, {"sync", "synchronous", S_ANTONYM},
    {"synchronous", NULL, S_ANTONYM}, {"async", "asynchronous", S_ANTONYM},
    {"asynchronous", NULL, S_ANTONYM}, {"client", NULL, S_ANTONYM},
    {"server", NULL, S_ANTONYM}, {"read", NULL, S_ANTONYM}, {"write", NULL, S_ANTONYM},
    {"get", NULL, S_ANTONYM}, {"set", NULL, S_ANTONYM}, {"horizontal", NULL, S_ANTONYM},
    {"vertical", NULL, S_ANTONYM}, {"row", NULL, S_ANTONYM}, {"rows", "row", S_ANTONYM},
    {"column", NULL, S_ANTONYM}, {"columns", "column", S_ANTONYM},
    {"width", NULL, S_ANTONYM}, {"height", NULL, S_ANTONYM}, {"profit", NULL, S_ANTONYM},
    {"loss", NULL, S_ANTONYM}, {"uppercase", NULL, S_ANTONYM},
    {"lowercase", NULL, S_ANTONYM}, {"import", NULL, S_ANTONYM}, {"arrive", NULL, S_ANTONYM},
    {"leave", NULL, S_ANTONYM}, {"sunrise", NULL, S_ANTONYM}, {"sunset", NULL, S_ANTONYM},
    {"morning", NULL, S_ANTONYM}, {"evening", NULL, S_ANTONYM}, {"night", NULL, S_ANTONYM},
    {"than", NULL, S_PREP}, {"vs", "versus", S_PREP}, {"versus", NULL, S_PREP},
    {"for", NULL, S_PREP}, {"with", NULL, S_PREP}, {"using", NULL, S_PREP},
    {"via", NULL, S_PREP}, {"by", NULL, S_PREP}, {"about", NULL, S_PREP},
    {"at", NULL, S_PREP}, {"within", NULL, S_PREP}, {"during", NULL, S_PREP},
    {"through", NULL, S_PREP}, {"per", NULL, S_PREP}, {"as", NULL, S_PREP},
    {"of", NULL, S_PREP}, {"between", NULL, S_PREP}, {"when", NULL, S_PREP},
    //  Formats, languages, audiences.
    {"json", NULL, S_FORMAT}, {"yaml", NULL, S_FORMAT}, {"yml", "yaml", S_FORMAT},
    {"xml", NULL, S_FORMAT}, {"csv", NULL, S_FORMAT}, {"markdown", NULL, S_FORMAT},
    {"html", NULL, S_FORMAT}, {"toml", NULL, S_FORMAT}, {"table", NULL, S_FORMAT},
    {"list", NULL, S_FORMAT}, {"bullet", "list", S_FORMAT}, {"bullets", "list", S_FORMAT},
    {"bulleted", "list", S_FORMAT}, {"points", NULL, S_FORMAT},
    {"paragraph", NULL, S_FORMAT}, {"paragraphs", "paragraph", S_FORMAT},
    {"essay", NULL, S_FORMAT}, {"poem", NULL, S_FORMAT}, {"haiku", NULL, S_FORMAT},
    {"limerick", NULL, S_FORMAT}, {"story", NULL, S_FORMAT}, {"tweet", NULL, S_FORMAT},
    {"email", NULL, S_FORMAT}, {"letter", NULL, S_FORMAT}, {"summary", NULL, S_FORMAT},
    {"sentence", NULL, S_FORMAT}, {"sentences", "sentence", S_FORMAT},
    {"words", NULL, S_FORMAT}, {"brief", NULL, S_FORMAT}, {"briefly", "brief", S_FORMAT},
    {"detailed", NULL, S_FORMAT}, {"detail", "detailed", S_FORMAT},
    {"concise", "brief", S_FORMAT}, {"formal", NULL, S_FORMAT}, {"informal", NULL, S_FORMAT},
    {"casual", "informal", S_FORMAT}, {"funny", NULL, S_FORMAT},
    {"child", NULL, S_FORMAT}, {"children", "child", S_FORMAT}, {"kid", "child", S_FORMAT},
    {"kids", "child", S_FORMAT}, {"beginner", NULL, S_FORMAT},
    {"beginners", "beginner", S_FORMAT}, {"novice", "beginner", S_FORMAT},
    {"expert", NULL, S_FORMAT}, {"experts", "expert", S_FORMAT},
    {"professional", NULL, S_FORMAT}, {"student", NULL, S_FORMAT},
    {"students", "student", S_FORMAT}, {"teenager", NULL, S_FORMAT},
    {"adult", NULL, S_FORMAT}, {"adults", "adult", S_FORMAT}, {"developer", NULL, S_FORMAT},
    {"developers", "developer", S_FORMAT}, {"manager", NULL, S_FORMAT},
    {"english", NULL, S_FORMAT}, {"french", NULL, S_FORMAT}, {"spanish", NULL, S_FORMAT},
    {"german", NULL, S_FORMAT}, {"italian", NULL, S_FORMAT}, {"portuguese", NULL, S_FORMAT},
    {"chinese", NULL, S_FORMAT}, {"japanese", NULL, S_FORMAT}, {"korean", NULL, S_FORMAT},
    {"russian", NULL, S_FORMAT}, {"arabic", NULL, S_FORMAT}, {"hindi", NULL, S_FORMAT},
    {"dutch", NULL, S_FORMAT}, {"python", NULL, S_FORMAT}, {"javascript", NULL, S_FORMAT},
    {"js", "javascript", S_FORMAT}, {"typescript", NULL, S_FORMAT}, {"java", NULL, S_FORMAT},
    {"rust", NULL, S_FORMAT}, {"golang", NULL, S_FORMAT}, {"ruby", NULL, S_FORMAT},
    {"php", NULL, S_FORMAT}, {"sql", NULL, S_FORMAT}, {"bash", NULL, S_FORMAT},
    {"c", NULL, S_FORMAT}, {"cpp", NULL, S_FORMAT}, {"kotlin", NULL, S_FORMAT},
    {"swift", NULL, S_FORMAT}, {"perl", NULL, S_FORMAT}, {"haskell", NULL, S_FORMAT},
    //  Synonyms and spellings: one form each.
    {"automobile", "car"}, {"repair", "fix"}, {"describe", "explain"},
    {"create", "make"}, {"assist", "help"}, {"utilize", "use"}, {"utilise", "use"},
    {"choose", "pick"}, {"select", "pick"}, {"locate", "find"}, {"obtain", "get"},
    {"compose", "write"}, {"draft", "write"}, {"picture", "image"}, {"photo", "image"},
    {"film", "movie"}, {"recommend", "suggest"}, {"mistake", "error"}, {"reply", "answer"},
    {"respond", "answer"}, {"which", "what"}, {"colour", "color"},
    {"favourite", "favorite"}, {"centre", "center"}, {"behaviour", "behavior"},
    {"grey", "gray"}, {"programme", "program"}, {"analyse", "analyze"},
    {"summarise", "summarize"}, {"optimise", "optimize"}, {"organise", "organize"},
    {"recognise", "recognize"}, {"initialise", "initialize"}, {"licence", "license"},
    {"synopsis", "summary"}, {"overview", "summary"}, {"quickest", "fastest"},
    {"ways", "way"}, {"methods", "way"}, {"method", "way"}, {"steps", "way"},
    {"instructions", "way"}, {"guide", "way"}, {"procedure", "way"},
    {"simplest", "easiest"}, {"meaning", "definition"}, {"define", "definition"},
};
// clang-format on
#pragma GCC diagnostic pop

//  One term of a prompt.
typedef struct {
    char canon[AIGW_WORDS_LEN_MAX + 1];  //  canonical form
    unsigned roles;                      //  S_* bits
    bool dropped;                        //  a filler left out of the comparison
} s_term_t;

struct _aigw_verify_t {
    const aigw_vectors_t *vectors;  //  word vectors (borrowed), or NULL
    double synonym_min;             //  cosine bar for vector synonyms
    s_lex_t *lexicon;               //  the table, sorted by word
    size_t lexicon_size;            //  its entries
    aigw_word_t *words;             //  scratch: one prompt's words
    s_term_t *terms[2];             //  scratch: each prompt's terms
    size_t count[2];                //  how many terms each
    int *lcs;                       //  scratch: (WORDS_MAX + 1)^2 LCS table
};

static int
s_lex_cmp (const void *a, const void *b)
{
    return strcmp (((const s_lex_t *) a)->word, ((const s_lex_t *) b)->word);
}

static const s_lex_t *
s_lex_find (aigw_verify_t *self, const char *word)
{
    s_lex_t key = {word, NULL, 0, 0};
    return bsearch (&key, self->lexicon, self->lexicon_size, sizeof key, s_lex_cmp);
}

aigw_verify_t *
aigw_verify_new (const aigw_vectors_t *vectors, double synonym_min)
{
    aigw_verify_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->vectors = vectors;
    self->synonym_min = synonym_min;
    self->lexicon_size = sizeof s_lexicon / sizeof s_lexicon[0];
    self->lexicon = malloc (sizeof s_lexicon);
    self->words = malloc ((AIGW_VERIFY_WORDS_MAX + 1) * sizeof *self->words);
    self->terms[0] = malloc (AIGW_VERIFY_WORDS_MAX * sizeof (s_term_t));
    self->terms[1] = malloc (AIGW_VERIFY_WORDS_MAX * sizeof (s_term_t));
    self->lcs = malloc ((AIGW_VERIFY_WORDS_MAX + 1) * (AIGW_VERIFY_WORDS_MAX + 1) * sizeof (int));
    if (!self->lexicon || !self->words || !self->terms[0] || !self->terms[1] || !self->lcs) {
        aigw_verify_destroy (&self);
        return NULL;
    }
    memcpy (self->lexicon, s_lexicon, sizeof s_lexicon);
    qsort (self->lexicon, self->lexicon_size, sizeof *self->lexicon, s_lex_cmp);
    //  A word listed twice keeps its first entry's meaning; the table is
    //  written by hand, so the first duplicate is merged, not an error.
    size_t kept = 0;
    for (size_t i = 0; i < self->lexicon_size; i++)
        if (kept == 0 || strcmp (self->lexicon[kept - 1].word, self->lexicon[i].word) != 0)
            self->lexicon[kept++] = self->lexicon[i];
    self->lexicon_size = kept;
    return self;
}

void
aigw_verify_destroy (aigw_verify_t **self_p)
{
    assert (self_p);
    aigw_verify_t *self = *self_p;
    if (!self)
        return;
    free (self->lexicon);
    free (self->words);
    free (self->terms[0]);
    free (self->terms[1]);
    free (self->lcs);
    free (self);
    *self_p = NULL;
}

const char *
aigw_verify_verdict_name (aigw_verify_verdict_t verdict)
{
    static const char *names[] = {"same",      "number", "entity",  "negation", "antonym",
                                  "direction", "format", "content", "length"};
    return (size_t) verdict < sizeof names / sizeof names[0] ? names[verdict] : "?";
}

static bool
s_verdict (aigw_verify_result_t *result, aigw_verify_verdict_t verdict, const char *format, ...)
{
    if (result) {
        result->verdict = verdict;
        va_list args;
        va_start (args, format);
        vsnprintf (result->detail, sizeof result->detail, format, args);
        va_end (args);
    }
    return verdict == AIGW_VERIFY_SAME;
}

//  Plurals and -ies as the singular, for comparing forms.
static void
s_stem (const char *word, char *out)
{
    size_t n = strlen (word);
    memcpy (out, word, n + 1);
    if (n > 4 && strcmp (word + n - 3, "ies") == 0)
        strcpy (out + n - 3, "y");
    else if (n > 4
             && (strcmp (word + n - 4, "sses") == 0 || strcmp (word + n - 4, "ches") == 0
                 || strcmp (word + n - 4, "shes") == 0 || strcmp (word + n - 3, "xes") == 0))
        out[n - 2] = 0;
    else if (n > 3 && word[n - 1] == 's' && word[n - 2] != 's' && word[n - 2] != 'u'
             && word[n - 2] != 'i')
        out[n - 1] = 0;
}

//  Damerau-Levenshtein distance (adjacent swaps count one), capped: the
//  words are at most AIGW_WORDS_LEN_MAX bytes. Three rows on the stack: a
//  whole matrix in thread-local storage cost 34 KB of RSS in every thread
//  of the process (10,240 edge threads: 330 MiB), whether it ran or not.
static size_t
s_edit_distance (const char *a, const char *b)
{
    size_t n = strlen (a), m = strlen (b);
    assert (n <= AIGW_WORDS_LEN_MAX && m <= AIGW_WORDS_LEN_MAX);
    uint8_t rows[3][AIGW_WORDS_LEN_MAX + 2];
    uint8_t *two = rows[0], *one = rows[1], *row = rows[2];
    for (size_t j = 0; j <= m; j++)
        one[j] = (uint8_t) j;
    for (size_t i = 1; i <= n; i++) {
        row[0] = (uint8_t) i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = one[j] + 1u;
            if (row[j - 1] + 1u < best)
                best = row[j - 1] + 1u;
            if (one[j - 1] + cost < best)
                best = one[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && two[j - 2] + 1u < best)
                best = two[j - 2] + 1u;
            row[j] = (uint8_t) best;
        }
        uint8_t *oldest = two;
        two = one;
        one = row;
        row = oldest;
    }
    return one[m];
}

//  Turn prompt SIDE's TEXT into terms. Returns -1 when it is too long.
static int
s_terms (aigw_verify_t *self, int side, const char *text, size_t len)
{
    size_t total;
    size_t n = aigw_words_split (text, len, AIGW_WORDS_SYMBOLS, self->words,
                                 AIGW_VERIFY_WORDS_MAX + 1, &total);
    if (total > AIGW_VERIFY_WORDS_MAX)
        return -1;
    s_term_t *terms = self->terms[side];
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const aigw_word_t *w = &self->words[i];
        const s_lex_t *lex = s_lex_find (self, w->norm);
        unsigned roles = lex ? lex->roles : 0;
        if (lex && !roles && !lex->canon)
            continue;  //  an ignored word
        //  "for me", "to you": the politeness took the object away.
        if ((strcmp (w->norm, "for") == 0 || strcmp (w->norm, "to") == 0) && i + 1 < n
            && (strcmp (self->words[i + 1].norm, "me") == 0
                || strcmp (self->words[i + 1].norm, "you") == 0)
            && (i + 2 == n || self->words[i + 2].flags & AIGW_WORD_SENTENCE))
            continue;
        //  "how to" is "how do I": the "to" goes.
        if (strcmp (w->norm, "to") == 0 && count > 0 && strcmp (terms[count - 1].canon, "how") == 0)
            continue;
        //  Number words become one number: "twenty five" is 25.
        if (roles & S_NUMBER && lex->value > 0) {
            double total_value = 0, current = 0;
            size_t j = i;
            for (; j < n; j++) {
                const s_lex_t *l = s_lex_find (self, self->words[j].norm);
                if (!l || !(l->roles & S_NUMBER) || l->value <= 0)
                    break;
                if (l->value >= 1000) {
                    total_value += (current > 0 ? current : 1) * l->value;
                    current = 0;
                }
                else if (l->value == 100)
                    current = (current > 0 ? current : 1) * 100;
                else
                    current += l->value;
            }
            i = j - 1;
            snprintf (terms[count].canon, sizeof terms[count].canon, "%.15g",
                      total_value + current);
            terms[count].roles = S_DIGITS;
            terms[count++].dropped = false;
            continue;
        }
        s_term_t *t = &terms[count++];
        snprintf (t->canon, sizeof t->canon, "%s", lex && lex->canon ? lex->canon : w->norm);
        t->roles = roles;
        t->dropped = false;
        if (w->flags & AIGW_WORD_DIGITS)
            t->roles |= S_DIGITS;
        if (w->flags & AIGW_WORD_SYMBOL && !(roles & S_UNIT))
            t->roles |= S_SYMBOL;
        if (!(w->flags & AIGW_WORD_OPENED)
            && (w->flags & AIGW_WORD_ALLCAPS
                || (w->flags & AIGW_WORD_CAPITAL && !(w->flags & AIGW_WORD_SENTENCE))))
            t->roles |= S_ENTITY;
    }
    self->count[side] = count;
    return 0;
}

//  Index of the first term of SIDE with CANON not yet matched, or -1.
static int
s_find_unmatched (aigw_verify_t *self, int side, const char *canon, const bool *matched)
{
    for (size_t i = 0; i < self->count[side]; i++)
        if (!matched[i] && strcmp (self->terms[side][i].canon, canon) == 0)
            return (int) i;
    return -1;
}

//  Whether TYPO may be a misspelling of WORD: close in spelling, and TYPO
//  rare or unknown (two common words a letter apart, form and from,
//  differ in meaning).
static bool
s_typo (aigw_verify_t *self, const char *typo, const char *word)
{
    size_t shorter = strlen (typo) < strlen (word) ? strlen (typo) : strlen (word);
    size_t allowed = shorter >= 8 ? 2 : shorter >= 4 ? 1 : 0;
    //  Without vectors there is no telling a rare word from a common one.
    if (!allowed || !self->vectors)
        return false;
    int64_t rank = aigw_vectors_find (self->vectors, typo, strlen (typo));
    if (rank >= 0 && rank <= AIGW_VERIFY_RARE_RANK)
        return false;
    return s_edit_distance (typo, word) <= allowed;
}

//  Whether two differing words may stand for each other: a spelling, a
//  plural, a typo or a synonym by the vectors. *SIM_P gets the cosine.
static bool
s_substitutes (aigw_verify_t *self, const char *a, const char *b, double *sim_p)
{
    *sim_p = 0;
    char sa[AIGW_WORDS_LEN_MAX + 1], sb[AIGW_WORDS_LEN_MAX + 1];
    s_stem (a, sa);
    s_stem (b, sb);
    if (strcmp (sa, sb) == 0)
        return true;
    int64_t ra = -1, rb = -1;
    if (self->vectors) {
        ra = aigw_vectors_find (self->vectors, a, strlen (a));
        rb = aigw_vectors_find (self->vectors, b, strlen (b));
    }
    if (ra >= 0 && rb >= 0) {
        *sim_p = aigw_vectors_similarity (self->vectors, (size_t) ra, (size_t) rb);
        if (*sim_p >= self->synonym_min)
            return true;
    }
    if (s_typo (self, b, a))
        return true;
    return s_typo (self, a, b);
}

//  Whether the term run [FROM, TO) of SIDE may move: it starts with a
//  preposition, which carries its role with it, or it is the verb be
//  alone (a question's inversion: "what is X" and "what X is").
static bool
s_run_moves (aigw_verify_t *self, int side, size_t from, size_t to)
{
    if (to == from + 1
        && (strcmp (self->terms[side][from].canon, "is") == 0
            || strcmp (self->terms[side][from].canon, "was") == 0))
        return true;
    return to > from && self->terms[side][from].roles & S_PREP;
}

bool
aigw_verify_same (aigw_verify_t *self, const char *a, size_t alen, const char *b, size_t blen,
                  aigw_verify_result_t *result)
{
    assert (self);
    if (s_terms (self, 0, a, alen) || s_terms (self, 1, b, blen))
        return s_verdict (result, AIGW_VERIFY_LENGTH, "more than %d words", AIGW_VERIFY_WORDS_MAX);
    s_term_t *ta = self->terms[0], *tb = self->terms[1];
    size_t na = self->count[0], nb = self->count[1];

    //  Negation: the same number of negations on each side.
    size_t neg[2] = {0, 0};
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < self->count[side]; i++)
            neg[side] += (self->terms[side][i].roles & S_NEG) != 0;
    if (neg[0] != neg[1])
        return s_verdict (result, AIGW_VERIFY_NEGATION, "%zu negation(s) / %zu", neg[0], neg[1]);

    //  Match equal terms; what is left differs.
    bool ma[AIGW_VERIFY_WORDS_MAX] = {false}, mb[AIGW_VERIFY_WORDS_MAX] = {false};
    for (size_t i = 0; i < na; i++) {
        int j = s_find_unmatched (self, 1, ta[i].canon, mb);
        if (j >= 0)
            ma[i] = mb[j] = true;
    }
    //  Fillers may come and go.
    for (size_t i = 0; i < na; i++)
        if (!ma[i] && ta[i].roles & S_FILLER)
            ma[i] = ta[i].dropped = true;
    for (size_t j = 0; j < nb; j++)
        if (!mb[j] && tb[j].roles & S_FILLER)
            mb[j] = tb[j].dropped = true;

    //  A typo of a strict word ("recieve" for "receive") is that word: an
    //  unlisted, rare or unknown word a letter or two from one.
    for (int side = 0; side < 2; side++) {
        s_term_t *tx = self->terms[side], *ty = self->terms[1 - side];
        bool *mx = side ? mb : ma, *my = side ? ma : mb;
        for (size_t i = 0; i < self->count[side]; i++) {
            if (mx[i] || tx[i].roles)
                continue;
            for (size_t j = 0; j < self->count[1 - side]; j++)
                if (!my[j] && ty[j].roles && !(ty[j].roles & (S_ENTITY | S_DIGITS | S_SYMBOL))
                    && s_typo (self, tx[i].canon, ty[j].canon)) {
                    mx[i] = my[j] = true;
                    memcpy (tx[i].canon, ty[j].canon, sizeof tx[i].canon);
                    break;
                }
        }
    }

    //  Strict differences, most telling first: a number, an antonym pair,
    //  a format, an entity.
    static const struct {
        unsigned roles;
        aigw_verify_verdict_t verdict;
    } strict[] = {{S_DIGITS | S_NUMBER | S_ORDINAL | S_UNIT | S_SYMBOL, AIGW_VERIFY_NUMBER},
                  {S_ANTONYM, AIGW_VERIFY_ANTONYM},
                  {S_FORMAT, AIGW_VERIFY_FORMAT},
                  {S_ENTITY, AIGW_VERIFY_ENTITY}};
    for (size_t k = 0; k < sizeof strict / sizeof strict[0]; k++) {
        const char *wa = NULL, *wb = NULL;
        for (size_t i = 0; i < na && !wa; i++)
            if (!ma[i] && ta[i].roles & strict[k].roles)
                wa = ta[i].canon;
        for (size_t j = 0; j < nb && !wb; j++)
            if (!mb[j] && tb[j].roles & strict[k].roles)
                wb = tb[j].canon;
        if (wa || wb)
            return s_verdict (result, strict[k].verdict, "%s / %s", wa ? wa : "-", wb ? wb : "-");
    }

    //  Pair what is left as synonyms, spellings or typos, best first;
    //  B's term takes A's form so that the order check sees one word.
    for (size_t i = 0; i < na; i++) {
        if (ma[i])
            continue;
        int best = -1;
        double best_sim = -2;
        for (size_t j = 0; j < nb; j++) {
            double sim;
            if (!mb[j] && s_substitutes (self, ta[i].canon, tb[j].canon, &sim) && sim > best_sim) {
                best = (int) j;
                best_sim = sim;
            }
        }
        if (best < 0) {
            const char *other = "-";
            for (size_t j = 0; j < nb && other[0] == '-'; j++)
                if (!mb[j])
                    other = tb[j].canon;
            return s_verdict (result, AIGW_VERIFY_CONTENT, "%s / %s", ta[i].canon, other);
        }
        ma[i] = mb[best] = true;
        memcpy (tb[best].canon, ta[i].canon, sizeof tb[best].canon);
    }
    for (size_t j = 0; j < nb; j++)
        if (!mb[j])
            return s_verdict (result, AIGW_VERIFY_CONTENT, "- / %s", tb[j].canon);

    //  The same words: the same order, or phrases that moved whole with
    //  their preposition. The longest common subsequence of the kept
    //  terms leaves the moved ones; each run of those must lead with a
    //  preposition, on both sides.
    size_t ka[AIGW_VERIFY_WORDS_MAX], kb[AIGW_VERIFY_WORDS_MAX], ca = 0, cb = 0;
    for (size_t i = 0; i < na; i++)
        if (!ta[i].dropped)
            ka[ca++] = i;
    for (size_t j = 0; j < nb; j++)
        if (!tb[j].dropped)
            kb[cb++] = j;
    int *L = self->lcs;
    size_t w = cb + 1;
    for (size_t i = 0; i <= ca; i++)
        for (size_t j = 0; j <= cb; j++) {
            if (i == 0 || j == 0)
                L[i * w + j] = 0;
            else if (strcmp (ta[ka[i - 1]].canon, tb[kb[j - 1]].canon) == 0)
                L[i * w + j] = L[(i - 1) * w + j - 1] + 1;
            else
                L[i * w + j]
                    = L[(i - 1) * w + j] > L[i * w + j - 1] ? L[(i - 1) * w + j] : L[i * w + j - 1];
        }
    if ((size_t) L[ca * w + cb] == ca)
        return s_verdict (result, AIGW_VERIFY_SAME, "");
    //  Walk back: mark the kept terms in the subsequence.
    bool ina[AIGW_VERIFY_WORDS_MAX] = {false}, inb[AIGW_VERIFY_WORDS_MAX] = {false};
    for (size_t i = ca, j = cb; i > 0 && j > 0;) {
        if (strcmp (ta[ka[i - 1]].canon, tb[kb[j - 1]].canon) == 0) {
            ina[i - 1] = inb[j - 1] = true;
            i--;
            j--;
        }
        else if (L[(i - 1) * w + j] >= L[i * w + j - 1])
            i--;
        else
            j--;
    }
    for (int side = 0; side < 2; side++) {
        size_t c = side ? cb : ca;
        const size_t *k = side ? kb : ka;
        const bool *in = side ? inb : ina;
        for (size_t i = 0; i < c;) {
            if (in[i]) {
                i++;
                continue;
            }
            size_t end = i;
            while (end < c && !in[end])
                end++;
            if (!s_run_moves (self, side, k[i], k[end - 1] + 1))
                return s_verdict (result, AIGW_VERIFY_DIRECTION, "'%s' moved",
                                  self->terms[side][k[i]].canon);
            i = end;
        }
    }
    return s_verdict (result, AIGW_VERIFY_SAME, "reordered phrases");
}

//  --------------------------------------------------------------------------
//  Selftest: without vectors (the labelled set runs with them: see
//  tests/integration/semantic_pairs.test.mjs).

void
aigw_verify_test (bool verbose)
{
    //  Edits, swaps counting one, up to the longest word.
    assert (s_edit_distance ("", "") == 0 && s_edit_distance ("", "abc") == 3);
    assert (s_edit_distance ("kitten", "sitting") == 3);
    assert (s_edit_distance ("recieve", "receive") == 1);
    assert (s_edit_distance ("ca", "abc") == 3);
    char longest[AIGW_WORDS_LEN_MAX + 1];
    memset (longest, 'a', AIGW_WORDS_LEN_MAX);
    longest[AIGW_WORDS_LEN_MAX] = 0;
    assert (s_edit_distance (longest, "") == AIGW_WORDS_LEN_MAX);
    assert (s_edit_distance ("b", longest) == AIGW_WORDS_LEN_MAX);

    aigw_verify_t *v = aigw_verify_new (NULL, AIGW_VERIFY_SYNONYM_MIN);
    assert (v);
    static const struct {
        const char *a, *b;
        aigw_verify_verdict_t verdict;
    } cases[] = {
        {"Turn on the lights", "turn on the lights please", AIGW_VERIFY_SAME},
        {"turn on the lights", "turn off the lights", AIGW_VERIFY_ANTONYM},
        {"Convert USD to EUR", "convert usd to eur", AIGW_VERIFY_SAME},
        {"convert USD to EUR", "convert EUR to USD", AIGW_VERIFY_DIRECTION},
        {"does smoking cause cancer", "does cancer cause smoking", AIGW_VERIFY_DIRECTION},
        {"How do I reverse a list in Python?", "In Python, how do I reverse a list?",
         AIGW_VERIFY_SAME},
        {"How do I reverse a list in python", "how to reverse a list in python", AIGW_VERIFY_SAME},
        {"give me 2 examples", "give me two examples", AIGW_VERIFY_SAME},
        {"give me 2 examples", "give me three examples", AIGW_VERIFY_NUMBER},
        {"what is twenty five plus 3", "what is 25 plus 3", AIGW_VERIFY_SAME},
        {"what is 2+3", "what is 2*3", AIGW_VERIFY_NUMBER},
        {"cost in $", "cost in \xe2\x82\xac", AIGW_VERIFY_NUMBER},
        {"5 km", "5 miles", AIGW_VERIFY_NUMBER},
        {"5 kilometres", "5 km", AIGW_VERIFY_SAME},
        {"Is this safe?", "Is this not safe?", AIGW_VERIFY_NEGATION},
        {"I can't log in", "I can log in", AIGW_VERIFY_NEGATION},
        {"explain recursion to a child", "explain recursion to an expert", AIGW_VERIFY_FORMAT},
        {"answer in JSON", "answer in YAML", AIGW_VERIFY_FORMAT},
        {"the weather in Paris", "the weather in London", AIGW_VERIFY_ENTITY},
        {"what is the colour of the sky", "what's the color of the sky", AIGW_VERIFY_SAME},
        //  A typo needs the vectors to tell a rare word (the labelled set).
        {"how do I recieve email", "how do I receive email", AIGW_VERIFY_ANTONYM},
        {"list the planets", "list the plants", AIGW_VERIFY_CONTENT},
        {"write a poem about cats", "write a poem about dogs", AIGW_VERIFY_CONTENT},
        {"fix my car", "repair my automobile", AIGW_VERIFY_SAME},
        {"the best books", "the best book", AIGW_VERIFY_SAME},
        {"dog bites man", "man bites dog", AIGW_VERIFY_DIRECTION},
        {"sort a list", "sort a list quickly", AIGW_VERIFY_SAME},
        {"sort a list", "sort a long list", AIGW_VERIFY_ANTONYM},
        {"", "", AIGW_VERIFY_SAME},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aigw_verify_result_t r;
        bool same = aigw_verify_same (v, cases[i].a, strlen (cases[i].a), cases[i].b,
                                      strlen (cases[i].b), &r);
        if (verbose || r.verdict != cases[i].verdict)
            fprintf (stderr, "verify: '%s' / '%s': %s (%s)\n", cases[i].a, cases[i].b,
                     aigw_verify_verdict_name (r.verdict), r.detail);
        assert (r.verdict == cases[i].verdict);
        assert (same == (r.verdict == AIGW_VERIFY_SAME));
        //  Symmetric.
        aigw_verify_result_t back;
        aigw_verify_same (v, cases[i].b, strlen (cases[i].b), cases[i].a, strlen (cases[i].a),
                          &back);
        assert ((back.verdict == AIGW_VERIFY_SAME) == same);
    }
    //  Too long to verify: no hit.
    char *longtext = malloc (AIGW_VERIFY_WORDS_MAX * 4 + 8);
    assert (longtext);
    size_t n = 0;
    for (int i = 0; i <= AIGW_VERIFY_WORDS_MAX; i++)
        n += (size_t) sprintf (longtext + n, "ab ");
    aigw_verify_result_t r;
    assert (!aigw_verify_same (v, longtext, n, longtext, n, &r));
    assert (r.verdict == AIGW_VERIFY_LENGTH);
    assert (aigw_verify_same (v, longtext, n - 6, longtext, n - 6, NULL));
    free (longtext);
    assert (strcmp (aigw_verify_verdict_name (AIGW_VERIFY_DIRECTION), "direction") == 0);
    aigw_verify_destroy (&v);
    aigw_verify_destroy (&v);
}
