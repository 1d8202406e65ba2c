EXTENSION = telnyx_orders
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = telnyx_orders
OBJS = \
	src/telnyx_orders.o \
	src/guard.o \
	src/validate.o \
	src/api.o \
	src/http.o \
	src/schedule.o \
	src/store.o \
	src/queue.o \
	src/worker.o \
	src/reconcile.o \
	src/refresh.o \
	src/webhook.o \
	src/apikey.o \
	src/wakeup.o \
	src/budget.o \
	src/calls.o \
	src/spend.o \
	src/launcher.o

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# pg_regress suites (sql/NAME.sql, expected/NAME.out).  They need the
# Telnyx stand-in: test/run starts it with a throwaway cluster, and
# "make installcheck" (test/installcheck) with the running server.
SUITES = validate create sync follow errors transport queue spend security hostile schema

PKG_CONFIG ?= pkg-config
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl)
ifeq ($(CURL_LIBS),)
$(error libcurl not found by pkg-config: install libcurl4-openssl-dev)
endif

# Warnings are errors; "make WERROR=" builds with a compiler that warns more.
WERROR ?= -Werror
PG_CPPFLAGS = $(CURL_CFLAGS) -DTELNYX_ORDERS_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = $(WERROR)
SHLIB_LINK = $(CURL_LIBS) -lcrypto

# "make ASAN=1": AddressSanitizer and UndefinedBehaviorSanitizer (the server
# must then run with libasan preloaded: test/asan does it).
ifdef ASAN
SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
PG_CFLAGS += $(SANITIZE)
SHLIB_LINK += $(SANITIZE)
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The suites test/run passes to pg_regress.
print-regress:
	@echo $(SUITES)
.PHONY: print-regress

# The suites against the running server, with the stand-in started for them.
installcheck:
	PG_CONFIG=$(PG_CONFIG) test/installcheck
.PHONY: installcheck

# Every object depends on every header: PGXS tracks no header dependencies.
$(OBJS): $(wildcard src/*.h)
