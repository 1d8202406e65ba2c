/*
 * The floor of the synchronous benchmark: N POSTs of a create's body on one
 * keep-alive connection with libcurl, the library the extension uses.
 * Prints the microseconds a request.  cc floor.c -lcurl; ./a.out URL N
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t
discard(char *data, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

int
main(int argc, char **argv)
{
	const char *body = "{\"ordering_groups\":[{\"country_iso\":\"US\",\"phone_number_type\":\"local\",\"count_requested\":\"1\"}]}";
	int			n = argc > 2 ? atoi(argv[2]) : 5000;
	CURL	   *easy = curl_easy_init();
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	struct timespec t0,
				t1;
	int			i;

	curl_easy_setopt(easy, CURLOPT_URL, argv[1]);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++)
		if (curl_easy_perform(easy) != CURLE_OK)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / n);
	return 0;
}
